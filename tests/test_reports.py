"""The report store beside the event log, on both backends: one open report per member
and post (reporting again updates it), the queue oldest first, closing a post's reports,
bad reasons refused; kept by a rebuild of the read models."""

from __future__ import annotations

import pytest

from appview.reports import ReportError
from tests.conftest import Backend
from tests.writes_support import write_services

POST_A = "at://did:plc:aaaaaaaaaaaaaaaaaaaaaaaa/space.atbb.post/3kaaaaaaaaaaa"
POST_B = "at://did:plc:bbbbbbbbbbbbbbbbbbbbbbbb/space.atbb.post/3kbbbbbbbbbbb"


def test_reports_are_taken_queued_closed_and_survive_a_rebuild(backend: Backend) -> None:
    with write_services(backend) as services:
        reports = services.reports
        first = reports.report(POST_A, "did:plc:reporter1", " spam ")
        assert (first.reason, first.status) == ("spam", "open")
        again = reports.report(POST_A, "did:plc:reporter1", "spam, and rude")
        assert again.id == first.id and again.reason == "spam, and rude"
        reports.report(POST_B, "did:plc:reporter1", "off topic")
        reports.report(POST_A, "did:plc:reporter2", "rude")
        queue = reports.open_queue()
        assert [item.post_uri for item in queue] == [POST_A, POST_B]
        assert [r.reporter for r in queue[0].reports] == ["did:plc:reporter1",
                                                          "did:plc:reporter2"]
        assert reports.open_count() == 3
        for bad in ("", "   ", "x" * 1001):
            with pytest.raises(ReportError):
                reports.report(POST_A, "did:plc:reporter3", bad)
        with pytest.raises(ReportError):
            reports.close(POST_A, "did:plc:mod", "ignored")
        assert services.rebuilds is not None
        assert services.rebuilds.run(reason="test").status == "completed"
        assert reports.open_count() == 3  # the appview's own data, not the read models'
        assert reports.close(POST_A, "did:plc:mod", "resolved") == 2
        assert [item.post_uri for item in reports.open_queue()] == [POST_B]
        closed = reports.of_post(POST_A)
        assert {(r.status, r.closed_by) for r in closed} == {("resolved", "did:plc:mod")}
        # a new report of a closed post opens a new one
        assert reports.report(POST_A, "did:plc:reporter1", "again").id != first.id
