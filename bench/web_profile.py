"""Where a cold topic page's time goes: each part of the handler timed on its own.

    python -m bench.web_profile [--posts 100000] [--topics 10000] [--samples 300]
                                [--backends sqlite,postgresql]

Seeds a forum as ``bench.web`` does, then, in this process, for ``--samples`` topics drawn
uniformly (each page met for the first time, as a crawler meets them), times what
``web.pages.topic.topic`` does one part at a time: the ETag's state read, the page's
queries, rendering each post's Markdown (parse and render, then sanitise: what every
view did before the projection stored the HTML), the template with the stored HTML and
with the Markdown rendered as it goes, and one hop to the thread pool. Then the whole
request, in-process through aiohttp's test client, one at a time (the handler's cost
without queueing). Baseline in the same run: the whole request for one topic already in
the page cache. Prints mean milliseconds and each part's share.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp_jinja2
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from appview.bootstrap import Services, bootstrap
from bench.web import Seeded, backend_settings, forum_events, seed
from projections.post_html import MarkdownRenderer, _rewrite_post_links, post_renderer
from projections.views import Viewer
from web.app import create_app
from web.pages.common import REACTIONS, _state, base_context
from web.pages.topic import topic_context


def timed(func: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = func(*args)
    return (time.perf_counter() - started) * 1000, result


def unsanitised(renderer: MarkdownRenderer, text: str) -> str:
    """The full path's HTML before the sanitiser (parse, post links, render)."""
    md = renderer._md
    tokens = md.parse(text)
    _rewrite_post_links(tokens)
    return str(md.renderer.render(tokens, md.options, {}))


def page_context(services: Services, topic_id: str, page: int, viewer: Viewer,
                 moment: datetime) -> dict[str, Any] | None:
    """What the topic handler's ``load()`` reads (the same function)."""
    return topic_context(services.queries, topic_id, page, viewer, moment)


async def profile(services: Services, seeded: Seeded, samples: int) -> None:
    app = create_app(services)
    rng = random.Random(3)
    topics = [rng.choice(seeded.topics)[0] for _ in range(samples)]
    viewer = Viewer.anonymous()
    moment = datetime.now(UTC)
    renderer = post_renderer()
    parts: dict[str, list[float]] = {name: [] for name in (
        "ETag state (positions, bans)", "queries", "Markdown parse + render",
        "sanitise (nh3)", "template, stored HTML", "template, Markdown as it goes")}
    for topic_id in topics:
        parts["ETag state (positions, bans)"].append(
            timed(_state, services, viewer, moment)[0])
        ms, context = timed(page_context, services, topic_id, 1, viewer, moment)
        parts["queries"].append(ms)
        posts = [context["result"].topic, *context["result"].replies.items]
        parse = clean = 0.0
        for post in posts:
            ms, html = timed(unsanitised, renderer, post.text)
            parse += ms
            clean += timed(renderer._cleaner.clean, html)[0]
        parts["Markdown parse + render"].append(parse)
        parts["sanitise (nh3)"].append(clean)
        request = make_mocked_request("GET", f"/t/{topic_id}", app=app)
        full = {**base_context(request, viewer), **context, "page": 1, "last_page": 1,
                "topic_page_url": lambda n: "", "csrf_token": None,
                "reactions_offered": REACTIONS,
                "compose": {"kind": "reply", "action": "", "title": "", "text": "",
                            "error": None, "preview": False, "parent": ""}}
        parts["template, stored HTML"].append(timed(
            aiohttp_jinja2.render_string, "topic.html", request, full)[0])
        result = context["result"]
        unstored = dataclasses.replace(
            result, topic=dataclasses.replace(result.topic, html=None),
            replies=dataclasses.replace(result.replies, items=tuple(
                dataclasses.replace(p, html=None) for p in result.replies.items)))
        parts["template, Markdown as it goes"].append(timed(
            aiohttp_jinja2.render_string, "topic.html", request,
            {**full, "result": unstored})[0])
    started = time.perf_counter()
    for _ in range(2000):
        await asyncio.to_thread(lambda: None)
    hop = (time.perf_counter() - started) / 2000 * 1000
    async with TestClient(TestServer(app)) as client:
        whole = []
        for topic_id in random.Random(4).sample([t[0] for t in seeded.topics], samples):
            started = time.perf_counter()
            async with client.get(f"/t/{topic_id}") as response:
                await response.read()
                assert response.status == 200, response.status
            whole.append((time.perf_counter() - started) * 1000)
        cached = []
        for _ in range(samples):
            started = time.perf_counter()
            async with client.get(f"/t/{topics[0]}") as response:
                await response.read()
            cached.append((time.perf_counter() - started) * 1000)
    means = {name: statistics.fmean(values) for name, values in parts.items()}
    before = (means["ETag state (positions, bans)"] + means["queries"]
              + means["template, Markdown as it goes"] + 3 * hop)
    after = (means["ETag state (positions, bans)"] + means["queries"]
             + means["template, stored HTML"] + 3 * hop)
    print(f"  {samples} topics drawn uniformly, first page, anonymous reader; mean ms:")
    for name, value in means.items():
        print(f"    {name:<32} {value:7.2f} ms")
    print(f"    {'thread-pool hop (each; 2-3 a page)':<32} {hop:7.3f} ms")
    print(f"    sum, Markdown rendered per view  {before:7.2f} ms"
          f"  (Markdown {means['Markdown parse + render'] + means['sanitise (nh3)']:.2f} ms,"
          f" {(means['Markdown parse + render'] + means['sanitise (nh3)']) / before:.0%})")
    print(f"    sum, stored HTML                 {after:7.2f} ms")
    print(f"    whole request in-process, cold   {statistics.fmean(whole):7.2f} ms"
          f"  (p50 {statistics.median(whole):.2f})")
    print(f"    baseline: from the page cache    {statistics.fmean(cached):7.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    parser.add_argument("--topics", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    forum = "did:plc:benchforumbenchforumbenc"
    seeded = forum_events(args.posts, args.topics, forum)
    with tempfile.TemporaryDirectory(prefix="atbb-bench-profile-") as tmp:
        for backend in args.backends.split(","):
            with backend_settings(tmp, backend, forum) as settings:
                seconds = seed(settings, seeded)
                print(f"\n{backend}: {args.posts:,} posts in {args.topics:,} topics, "
                      f"seeded in {seconds:.0f}s")
                services = bootstrap(settings)
                try:
                    asyncio.run(profile(services, seeded, args.samples))
                finally:
                    services.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
