"""The devnet's avatars for the demo (appview/devnet/avatars.py): a PNG per DID, the same
each time, and a profile naming it for every other member."""

from __future__ import annotations

from appview.avatars import sniff_image
from appview.devnet.avatars import PROFILE, avatar_png, give_avatars
from appview.devnet.network import DevNetwork
from appview.devnet.seed import SeededAccount
from appview.repos.cbor import Cid


def test_each_did_has_an_image_of_its_own() -> None:
    first = avatar_png("did:plc:aaaa")
    assert sniff_image(first) == "image/png"
    assert avatar_png("did:plc:aaaa") == first
    assert avatar_png("did:plc:bbbb") != first


async def test_every_other_member_gets_a_profile_with_an_avatar() -> None:
    async with DevNetwork() as network:
        pds = network.pds["pds1"]
        accounts = []
        for name in ("ann", "ben", "cat"):
            made = pds.create_account(f"{name}.test", "password-123")
            accounts.append(SeededAccount(name, made.did, made.handle, made.password,
                                          made.app_password, pds.url))
        given = give_avatars(network.pds, accounts)
        assert given == [accounts[0].did, accounts[2].did]
        for account in accounts:
            profile = pds.repo(account.did).get(PROFILE, "self")
            if account.did not in given:
                assert profile is None
                continue
            assert profile is not None
            ref = profile.value["avatar"]
            assert ref["ref"]["$link"] == str(Cid.for_raw(avatar_png(account.did)))
            assert ref["mimeType"] == "image/png"
