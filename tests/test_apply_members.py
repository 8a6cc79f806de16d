"""Member rows: the base a batch ensures for every DID it names, on SQLite and PostgreSQL."""

from __future__ import annotations

from events.model import AccountStatusChanged, IdentityChanged
from projections.apply_members import update_member_base
from tests.fakes import open_test_store


def _dids(store) -> list[str]:
    with store.read() as session:
        return [did for (did,) in session.query("SELECT did FROM members ORDER BY did")]


def test_a_member_row_is_ensured_for_every_did_named(backend) -> None:
    store = open_test_store(backend)
    try:
        identity = IdentityChanged(did="did:plc:carol", handle="carol.test", seq=3, time=None,
                                   source="jetstream", source_cursor=None, observed_at=1)
        with store.transaction() as session:
            changed, ensured = update_member_base(
                session, ["did:plc:bob", "did:plc:alice"], {"did:plc:carol": identity}, {})
        assert ensured == {"did:plc:alice", "did:plc:bob", "did:plc:carol"}
        assert changed == set()
        assert _dids(store) == ["did:plc:alice", "did:plc:bob", "did:plc:carol"]
    finally:
        store.close()


def test_dids_known_to_have_a_row_are_not_written_again(backend) -> None:
    store = open_test_store(backend)
    try:
        with store.transaction() as session:
            update_member_base(session, ["did:plc:alice"], {}, {})
        account = AccountStatusChanged(did="did:plc:alice", active=False, status="takendown",
                                       seq=5, time=None, source="jetstream",
                                       source_cursor=None, observed_at=2)
        with store.transaction() as session:
            # dave is said to be known (a load's earlier batch): nothing ensures his row
            changed, ensured = update_member_base(
                session, ["did:plc:alice", "did:plc:dave", "did:plc:erin"], {},
                {"did:plc:alice": account}, known={"did:plc:alice", "did:plc:dave"})
        assert ensured == {"did:plc:erin"}
        assert changed == {"did:plc:alice"}  # a known DID's events still apply
        assert _dids(store) == ["did:plc:alice", "did:plc:erin"]
        with store.read() as session:
            assert session.query(
                "SELECT account_state FROM members WHERE did = ?", ("did:plc:alice",)
            ) == [("suspended",)]
    finally:
        store.close()
