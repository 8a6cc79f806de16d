"""`atbb demo` in a subprocess: a newcomer's first command serves the seeded forum."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from appview.devnet.forum_summary import summarize
from appview.devnet.scenario import build_scenario
from projections.ids import post_id
from tests.test_cli_devnet import read_until

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_demo_serves_the_seeded_forum_within_30_seconds(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "web", "demo", "--port", str(port), "--seed", "3"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        scenario = build_scenario(3, "small", pds_names=("pds1",))
        expected = summarize(scenario.operations(), scenario.forum.did,
                             as_of_us=time.time_ns() // 1000)
        deadline = time.monotonic() + 30
        served: dict[str, int] = {}
        while time.monotonic() < deadline:
            try:
                served = _topic_totals(base)
            except OSError:
                served = {}
            if served and served == expected.board_topics:
                break
            time.sleep(0.5)
        assert served == expected.board_topics, "boards' topic counts within 30 s"

        health = _get(f"{base}/api/health")
        assert health["services"]["firehose"]["connected"] is True
        categories = _get(f"{base}/api/categories")
        assert categories["total"] == expected.categories
        forum = _get(f"{base}/api/forum")
        assert forum["name"] == expected.forum_name

        # Each visible topic's replies as a reader sees them.
        replies = {t.uri: t.visible_replies for t in expected.topics if t.visible}
        topic_pages = []
        for board_uri in expected.board_topics:
            page = _get(f"{base}/api/boards/{board_uri.rsplit('/', 1)[1]}/topics?limit=100")
            for topic in page["topics"]:
                assert topic["replyCount"] == replies[topic["uri"]], topic["uri"]
                topic_pages.append(f"{base}/t/{post_id(topic['uri'])}")
        with urllib.request.urlopen(f"{base}/", timeout=5) as response:
            assert expected.forum_name in response.read().decode()
        # half the members have an avatar: viewing the topics fetches theirs, and a later
        # view shows one
        assert _an_avatar_shows(base, topic_pages, within=20), "an avatar within 20 s"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert process.returncode == 0, output
    assert "open http://127.0.0.1:" in output


def _an_avatar_shows(base: str, pages: list[str], *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for url in pages:
            with urllib.request.urlopen(url, timeout=5) as response:
                found = re.search(r'<img class="avatar" src="([^"]+)"',
                                  response.read().decode())
            if found is not None:
                with urllib.request.urlopen(base + found[1].replace("&amp;", "&"),
                                            timeout=5) as image:
                    return bool(image.headers["Content-Type"] == "image/png")
        time.sleep(0.5)
    return False


def _topic_totals(base: str) -> dict[str, int]:
    totals: dict[str, int] = {}
    for category in _get(f"{base}/api/categories?limit=100")["categories"]:
        for board in _get(f"{base}/api/categories/{category['id']}/boards?limit=100")["boards"]:
            totals[board["uri"]] = board["topicCount"]
    return totals


@pytest.mark.slow
def test_the_token_command_the_demo_prints_makes_a_token_the_demo_accepts(
    tmp_path: Path,
) -> None:
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    env.pop("DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "web", "demo", "--port", str(port), "--seed", "3"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    assert process.stdout is not None
    try:
        lines = read_until(process.stdout, "an admin token for this demo")
        lines += read_until(process.stdout, "admin token create")
        command = shlex.split(lines[-1])
        assert command[0] == "atbb"
        # Run where the demo was started, from a shell whose settings point elsewhere:
        # the printed command carries everything it needs.
        shell = {**os.environ, "PYTHONPATH": str(ROOT), "FORUM_DID": "",
                 "DATABASE_URL": "postgresql://nobody@nohost.invalid:5432/elsewhere"}
        made = subprocess.run([sys.executable, "-m", "web", *command[1:]], cwd=tmp_path,
                              env=shell, capture_output=True, text=True, timeout=60,
                              check=False)
        assert made.returncode == 0, made.stderr
        assert "note:" not in made.stderr, made.stderr
        token = made.stdout.strip()
        assert _admin_status(port, token) == 200
        assert _admin_status(port, token[:-2] + "xx") == 401
        # the members' credentials it prints sign in offline, and the member writes
        read_until(process.stdout, "sign in at /signin as any member")
        read_until(process.stdout, " ")  # the Forum account
        handle, _password, app_password = read_until(process.stdout, " ")[-1].split()
        topic = _a_member_signs_in_and_posts(port, handle, app_password)
        # the demo signed its Forum account's agent in: the token moderates at once
        health = _get(f"http://127.0.0.1:{port}/api/health")
        assert health["services"]["forumAgent"]["authenticated"] is True
        locked = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/mod/lock", method="POST",
            data=json.dumps({"topicId": topic, "reason": "demo"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(locked, timeout=30) as answer:
            assert json.loads(answer.read())["alreadyActive"] is False
        assert _get(f"http://127.0.0.1:{port}/api/topics/{topic}")["locked"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert process.returncode == 0, output


def _a_member_signs_in_and_posts(port: int, handle: str, app_password: str) -> str:
    base = f"http://127.0.0.1:{port}"
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def csrf() -> str:
        with browser.open(f"{base}/signin", timeout=10) as page:
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode())
        assert found is not None
        return found.group(1)

    form = urllib.parse.urlencode({"identifier": handle, "password": app_password,
                                   "csrf_token": csrf()}).encode()
    with browser.open(f"{base}/signin/password", data=form, timeout=30) as signed:
        assert signed.status == 200  # the seeded members have joined: to the index
    with browser.open(f"{base}/signin", timeout=10) as account:
        assert f"@{handle}" in account.read().decode()
    board = _get(f"{base}/api/categories")["categories"][0]["id"]
    board_uri = _get(f"{base}/api/categories/{board}/boards")["boards"][0]["uri"]
    body = json.dumps({"title": "From the demo", "text": "Signed in offline.",
                       "boardUri": board_uri}).encode()
    request = urllib.request.Request(f"{base}/api/topics", data=body, headers={
        "Content-Type": "application/json", "X-CSRF-Token": csrf()})
    with browser.open(request, timeout=30) as created:
        assert created.status == 201
        uri = json.loads(created.read())["uri"]
    topic = _get(f"{base}/api/topics/{post_id(uri)}")
    assert topic["post"]["title"] == "From the demo"
    return post_id(uri)


def _admin_status(port: int, token: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/admin/projections",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
