"""The priority rule and the reason, as properties: between two accounts at most one may
act on the other, and only with strictly more authority; nobody bans themselves; the
Forum account outranks every role; a reason is kept trimmed, 1 to 3000 characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appview.writes.errors import BadWrite
from appview.writes.forum_actions import ACTIONS, clean_reason, may_act_on, rank
from projections.views import MemberPermissions

authorities = st.one_of(st.none(), st.integers(min_value=-1, max_value=1000))
kinds = st.sampled_from(sorted(ACTIONS))


def _member(did: str, authority: int | None) -> MemberPermissions:
    return MemberPermissions(did, frozenset(), authority, None)


@given(authorities, authorities, kinds)
def test_at_most_one_of_two_accounts_may_act_on_the_other(a: int | None, b: int | None,
                                                          name: str) -> None:
    kind = ACTIONS[name]
    one, other = _member("did:plc:one", a), _member("did:plc:other", b)
    forward, backward = may_act_on(one, other, kind), may_act_on(other, one, kind)
    assert not (forward and backward)
    assert forward == (rank(a) < rank(b))
    if a == b:
        assert not forward and not backward  # equal authority: neither


@given(authorities, kinds)
def test_on_oneself_only_posts_and_topics(a: int | None, name: str) -> None:
    kind = ACTIONS[name]
    me = _member("did:plc:me", a)
    assert may_act_on(me, me, kind) == (kind.subject != "user")


@given(authorities)
def test_the_forum_account_outranks_every_role(b: int | None) -> None:
    forum = _member("did:plc:forum", -1)
    target = _member("did:plc:member", b if b is None or b >= 0 else 0)
    assert all(may_act_on(forum, target, kind) for kind in ACTIONS.values())


@given(st.text(max_size=3100))
def test_a_reason_is_trimmed_and_bounded(text: str) -> None:
    cleaned = text.replace("\r\n", "\n").strip()
    if not cleaned or len(cleaned) > 3000:
        with pytest.raises(BadWrite):
            clean_reason(text)
    else:
        assert clean_reason(text) == cleaned
