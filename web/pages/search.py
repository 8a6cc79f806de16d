"""The search page: the query and its filters in the URL (a GET form, so it works
without JavaScript and every result page can be linked), one page of hits with their
marked excerpts, or the message saying why a query cannot be searched."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from projections import queries_search, queries_structure
from projections.queries_search import SearchRequest
from projections.search_text import QueryProblem
from web import urls
from web.pages.common import (
    answer_early,
    now,
    page_number,
    page_viewer,
    pages_for,
    read,
    render,
    services,
    validators,
)

HITS_PER_PAGE = queries_search.SEARCH.default


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(urls.SEARCH, search)


def search_filters(query: Any) -> dict[str, str]:
    """The filters of ``urls.SEARCH_FILTERS`` given in a request's query (text, as
    sent; the search checks them)."""
    return {name: str(query.get(name, "")).strip() for name in urls.SEARCH_FILTERS}


def search_request(text: str, filters: dict[str, str], offset: int | None,
                   limit: int | None) -> SearchRequest:
    return SearchRequest(
        text=text, board=filters["board"] or None, author=filters["author"] or None,
        since=filters["since"] or None, until=filters["until"] or None,
        sort=filters["sort"] or "relevance", type=filters["type"] or "all",
        offset=offset, limit=limit)


async def search(request: web.Request) -> web.Response:
    text = request.query.get("q", "")
    filters = search_filters(request.query)
    page = page_number(request)
    viewer, moment = page_viewer(request), now(request)
    found = await validators(request, viewer, moment)
    if (early := answer_early(request, found, viewer)) is not None:
        return early
    queries = services(request).queries
    wanted = search_request(text, filters, (page - 1) * HITS_PER_PAGE, HITS_PER_PAGE)

    def load() -> dict[str, Any]:
        with queries.snapshot(viewer=viewer, now=moment) as ctx:
            context: dict[str, Any] = {
                "forum": queries_structure.forum(ctx),
                "boards": queries_search.board_choices(ctx),
                "results": None, "problem": None,
            }
            if text.strip():
                try:
                    context["results"] = queries_search.search(ctx, wanted)
                except QueryProblem as problem:
                    context["problem"] = str(problem)
        return context

    context = await read(load)
    results = context["results"]
    last_page = pages_for(results.total, HITS_PER_PAGE) if results is not None else 1
    if results is not None and page > last_page:
        raise web.HTTPNotFound(text="No such page.")
    # the form shows the query as typed, at most as long as a query may be
    shown = text if len(text) <= 1000 else text[:1000]
    context.update(
        q=shown, filters=filters, page=page, last_page=last_page,
        search_page_url=lambda number: urls.search(text, number, **filters))
    status = 400 if context["problem"] else 200
    return await render(request, "search.html", context, found, viewer, status=status)
