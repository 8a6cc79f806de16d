"""The URL builders and ``local_path``, the guard of every redirect taken from user input.

``local_path`` is checked against ada (the WHATWG URL parser of Node.js, through the
``ada-url`` package): whatever string comes in, what a browser makes of the answer is a
path of this site."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from ada_url import URL
from hypothesis import example, given
from hypothesis import strategies as st

from web import urls

BASE = "https://forum.example/t/abc?page=2"
ORIGIN = "https://forum.example"

# What a browser strips before parsing: C0 controls and space at either end...
STRIPPED_AT_THE_ENDS = [chr(code) for code in range(0x21)]
# ...and tab, LF and CR wherever they are.
STRIPPED_EVERYWHERE = ["\t", "\n", "\r"]


def browser_reads(location: str) -> URL:
    """What a browser makes of a Location header (or a link) met on BASE; its strings
    hold no lone surrogate (each is U+FFFD)."""
    scalars = location.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return URL(scalars, base=BASE)


def assert_same_site_path(answer: str) -> None:
    assert answer.startswith("/") and not answer.startswith("//"), answer
    assert answer.isascii() and answer.isprintable() and "\\" not in answer, answer
    assert browser_reads(answer).origin == ORIGIN, answer


@pytest.mark.parametrize("char", STRIPPED_AT_THE_ENDS, ids=lambda c: f"U+{ord(c):04X}")
def test_a_character_stripped_at_the_ends_cannot_hide_another_host(char: str) -> None:
    for attack in (f"{char}//evil.example/", f"{char * 3}//evil.example{char}",
                   f"{char}\\\\evil.example", f"{char}/\\evil.example",
                   f"{char}https://evil.example/", f"{char}javascript:alert(1)"):
        assert browser_reads(attack).origin != ORIGIN  # the attack is real...
        assert urls.local_path(attack) == "/", repr(attack)  # ...and refused
    assert urls.local_path(f"{char}/b/x{char}{char}") == "/b/x"


@pytest.mark.parametrize("char", STRIPPED_EVERYWHERE, ids=lambda c: f"U+{ord(c):04X}")
def test_a_tab_or_newline_anywhere_cannot_hide_another_host(char: str) -> None:
    for attack in (f"/{char}/evil.example", f"/{char * 3}/evil.example/x",
                   f"{char}/{char}/{char}evil.example", f"/{char}\\evil.example",
                   f"\\{char}\\evil.example", f"/{char}{char}\\{char}evil.example"):
        assert browser_reads(attack).origin != ORIGIN
        assert urls.local_path(attack) == "/", repr(attack)
    # in a path of this site it goes, as it does in a browser
    assert urls.local_path(f"/b/{char}x") == "/b/x"


@pytest.mark.parametrize("attack", [
    "//evil.example", "/\\evil.example", "\\/evil.example", "\\\\evil.example",
    "https://evil.example/", "http:evil.example", "https:/evil.example",
    "javascript:alert(1)", "data:text/html,x", "evil.example", "", None,
])
def test_anything_but_a_path_is_refused(attack: str | None) -> None:
    assert urls.local_path(attack) == "/"
    assert urls.local_path(attack, default="/admin") == "/admin"


@pytest.mark.parametrize(("given", "answer"), [
    ("/", "/"),
    ("/b/x?page=2", "/b/x?page=2"),
    ("/t/abc?page=3#p-3kq", "/t/abc?page=3#p-3kq"),
    ("/api/admin/projections", "/api/admin/projections"),
    ("/u/did:plc:abc", "/u/did:plc:abc"),
    ("/b/a b", "/b/a%20b"),  # encoded as a browser would
    ("/b\\x", "/b/x"),  # a backslash in the path is a slash...
    ("/b?q=a\\b", "/b?q=a%5Cb"),  # ...not in the query, where it is kept, encoded
    ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),  # an encoded slash is no slash
    ("/b/é", "/b/%C3%A9"),
    ("/x\r\nSet-Cookie: a=b", "/xSet-Cookie:%20a=b"),  # never a header break
    ("  /b/x  ", "/b/x"),
])
def test_a_path_of_this_site_keeps_its_meaning(given: str, answer: str) -> None:
    assert urls.local_path(given) == answer
    assert_same_site_path(answer)


def test_an_overlong_path_is_refused() -> None:
    assert urls.local_path("/" + "a" * urls.LOCAL_PATH_MAX) == "/"


# Pieces that make up the known tricks, so hypothesis meets them often.
_PIECES = st.sampled_from([
    "/", "\\", "\t", "\n", "\r", " ", "\x00", "\x0b", "\x1f", "\x7f", ":", "@", ".", "..",
    "?", "#", "%", "%2f", "%09", "evil.example", "http:", "https:", "javascript:", "//",
    "\u3000", "\u2028", "\ufeff", "\ud800", "é", "a",
])
_INPUTS = st.one_of(st.text(), st.lists(_PIECES, max_size=12).map("".join))


@given(_INPUTS)
@example("/\t/evil.example")
@example("\x01/\x01/evil.example")
@example("/.//evil.example")
@example("//")
def test_whatever_comes_in_a_browser_reads_a_path_of_this_site(candidate: str) -> None:
    answer = urls.local_path(candidate)
    assert_same_site_path(answer)
    assert urls.local_path(answer) == answer  # a second pass changes nothing
    try:
        target = browser_reads(candidate)
    except ValueError:  # no URL at all to a browser (``//``): nothing to compare
        return
    if answer != "/" and target.origin == ORIGIN:
        # an accepted path leads where the browser would have gone
        assert unquote(browser_reads(answer).pathname) == unquote(target.pathname)


def test_builders_quote_every_value() -> None:
    assert urls.board("a/b?c") == "/b/a%2Fb%3Fc"
    assert urls.topic("t", 2, "p-x") == "/t/t?page=2#p-x"
    assert urls.signin(next_path="/a?b=c&d") == "/signin?next=%2Fa%3Fb%3Dc%26d"
