"""Deterministic forum prose for the seeded scenario: titles, Markdown bodies of varied
length and shape (paragraphs, lists, code blocks, links, quotes), moderation reasons.

Bodies are assembled from a pool of sentences drawn once from the seeded RNG, so a
benchmark can generate hundreds of thousands of posts quickly while every body still
varies in length and structure.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from types import MappingProxyType

from markdown_it import MarkdownIt

_SUBJECTS = (
    "the bench grinder", "my old router table", "the sourdough starter", "this soldering iron",
    "the tomato bed", "a cheap multimeter", "the rear derailleur", "our club's 3D printer",
    "the compost heap", "my grandfather's hand plane", "the Amiga 500", "a cast-iron skillet",
    "the greenhouse heater", "the drill press", "a salvaged oak board", "the bike's hub gears",
    "the breadboard prototype", "the kimchi batch", "the lathe chuck", "a second-hand oscilloscope",
)
_VERBS = (
    "stopped working after", "finally behaved after", "needed a full teardown after",
    "surprised me after", "got noticeably better after", "started rattling after",
    "was ruined by", "survived", "came back to life after", "smelled faintly of smoke after",
)
_EVENTS = (
    "a week of humid weather", "the firmware update", "one careless afternoon",
    "swapping the bearings", "a long winter in the shed", "I followed the manual for once",
    "the move to the new flat", "three attempts at calibration", "a deep clean with citrus oil",
    "borrowing a friend's jig", "the power cut on Sunday", "trying the method from last month",
)
_OPINIONS = (
    "Honestly, I would do it the same way again.",
    "I'm not convinced it was worth the effort.",
    "Has anyone else seen this?",
    "Happy to share measurements if that helps.",
    "The manual is silent on this, as usual.",
    "I suspect the cheap parts are to blame.",
    "Next time I'll take photos before taking it apart.",
    "It took far longer than the videos suggest.",
    "Patience turned out to be the main tool.",
    "Any pointers are very welcome.",
    "I learned more from the failure than from the fix.",
    "My neighbour thinks I've lost the plot.",
)
_ADVERBS = (
    "Yesterday", "Last weekend", "This morning", "After some digging", "Eventually", "Oddly"
)
_TITLE_FORMS = (
    "How do I fix {subject}?",
    "Build log: {subject}",
    "{Subject} {verb} {event}",
    "Is {subject} worth repairing?",
    "Show us {subject} (photos welcome)",
    "[Help] {Subject} misbehaving",
    "Beginner question about {subject}",
    "Long-term review: {subject}",
)
_LINKS = (
    ("the maintenance guide", "https://example.org/guides/maintenance"),
    ("this teardown", "https://example.com/teardowns/1987-edition"),
    ("the wiki page", "https://wiki.example.net/w/Calibration"),
    ("a helpful thread elsewhere", "https://forum.example.org/t/42"),
    ("the datasheet", "https://example.com/datasheets/lm317.pdf"),
)
_CODE = (
    ("python", "import statistics\n\nreadings = [3.29, 3.31, 3.30, 3.35]\n"
               "print(statistics.mean(readings), statistics.stdev(readings))"),
    ("sh", "for f in logs/*.txt; do\n  grep -c ERROR \"$f\"\ndone"),
    ("c", "void loop(void) {\n    int level = analogRead(A0);\n"
          "    digitalWrite(LED, level > 512);\n}"),
    ("", "speed: 1200 rpm\nfeed: 0.1 mm/rev\ndepth: 0.5 mm"),
    ("js", "const total = parts.reduce((sum, p) => sum + p.cost, 0);\nconsole.log(total);"),
)
_LIST_ITEMS = (
    "check the belt tension", "clean the contacts with isopropyl alcohol", "measure twice",
    "replace the fuse with the correct rating", "let the glue cure overnight",
    "keep a log of every change", "ask at the local repair café", "wear eye protection",
    "start with the cheapest fix", "label every screw as it comes out",
)
REASONS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "ban": (
            "Repeated spam links after a warning.",
            "Advertising in every board despite two warnings.",
        ),
        "temporary-ban": ("Heated personal attacks in a repair thread; one week to cool off.",),
        "unban": ("Apologised to the members involved; ban lifted early.", "Appeal accepted."),
        "lock": ("Thread has run its course and keeps going off topic.", "Resolved; locking."),
        "unlock": ("Reopened at the author's request with new findings.",),
        "pin": ("Useful reference for newcomers.", "Monthly show-and-tell thread."),
        "unpin": ("Superseded by the updated guide.",),
        "hide": ("Off-topic and rude.", "Contains a personal phone number.", "Duplicate post."),
        "unhide": ("Reviewed again: within the rules after the edit.",),
    }
)
REACTIONS = ("like", "like", "like", "👍", "❤️", "😂", "🎉", "🤔", "👀")

# The forum's furniture: names, blurbs, theme tokens, and the spammer's lines.
CATEGORY_NAMES = ("Workshop", "Electronics", "Garden & Kitchen", "Bikes", "Retro Computing")
BOARD_NAMES = (
    ("Woodworking", "Metalwork", "Tool Talk"),
    ("Repair Help", "Projects", "Test Gear"),
    ("Growing", "Fermenting", "Cast Iron"),
    ("Maintenance", "Rides"),
    ("8-bit", "16-bit"),
)
BOARD_BLURBS = (
    "Questions, answers and show-and-tell.",
    "Post your builds, wins and disasters.",
    "Ask before you break it; share after you fix it.",
)
# Named as the original atBB's theme editor names them (the records write them without
# dashes, the stylesheet reads them as custom properties: web/themes.py).
LIGHT_TOKENS: Mapping[str, str] = MappingProxyType(
    {
        "color-bg": "#fbfaf7",
        "color-text": "#1f2328",
        "color-primary": "#b4541a",
        "color-text-muted": "#6e7781",
        "radius": "6px",
        "font-body": "Inter, system-ui, sans-serif",
    }
)
DARK_TOKENS: Mapping[str, str] = MappingProxyType(
    {
        "color-bg": "#16181c",
        "color-text": "#e6e6e6",
        "color-primary": "#f0883e",
        "color-text-muted": "#8b949e",
        "radius": "6px",
        "font-body": "Inter, system-ui, sans-serif",
    }
)
SPAM = (
    "Cheap replacement parts!!! Visit https://spam.example/deals for 90% off.",
    "Earn money from home with your tools: https://spam.example/earn",
    "Best price on oscilloscopes, message me now https://spam.example/scopes",
)


class Prose:
    """Text drawn from one seeded RNG: the same RNG state gives the same text."""

    def __init__(self, rng: random.Random, *, pool_size: int = 600) -> None:
        self._rng = rng
        self._markdown = MarkdownIt("commonmark")
        self._sentences = [self._sentence() for _ in range(pool_size)]
        self._paragraphs = [
            " ".join(rng.choices(self._sentences, k=rng.randint(2, 5))) for _ in range(pool_size)
        ]

    def _sentence(self) -> str:
        rng = self._rng
        subject = rng.choice(_SUBJECTS)
        if rng.random() < 0.25:
            return rng.choice(_OPINIONS)
        text = f"{rng.choice(_ADVERBS)}, {subject} {rng.choice(_VERBS)} {rng.choice(_EVENTS)}."
        roll = rng.random()
        if roll < 0.15:
            text = text.replace(subject, f"**{subject}**", 1)
        elif roll < 0.25:
            text = text.replace(subject, f"_{subject}_", 1)
        elif roll < 0.3:
            text += " Setting `calibrate=true` helped a little."
        return text

    def title(self) -> str:
        rng = self._rng
        subject = rng.choice(_SUBJECTS)
        return rng.choice(_TITLE_FORMS).format(
            subject=subject,
            Subject=subject[0].upper() + subject[1:],
            verb=rng.choice(_VERBS),
            event=rng.choice(_EVENTS),
        )

    def body(self) -> str:
        """A Markdown body: mostly short, sometimes long, now and then a list, a code block
        or a link."""
        rng = self._rng
        roll = rng.random()
        if roll < 0.3:
            return " ".join(rng.choices(self._sentences, k=1 + (roll < 0.12)))
        if roll < 0.75:
            count = 1 + (roll < 0.5)
        elif roll < 0.95:
            count = 3 + int(rng.random() * 4)
        else:
            count = 10 + int(rng.random() * 9)
        blocks = rng.choices(self._paragraphs, k=count)
        extra = rng.random()
        if extra < 0.15:
            marker = "1." if extra < 0.06 else "-"
            items = rng.sample(_LIST_ITEMS, 2 + int(rng.random() * 4))
            listing = "\n".join(f"{marker} {item}" for item in items)
            blocks.insert(int(rng.random() * (count + 1)), listing)
        elif extra < 0.25:
            language, code = rng.choice(_CODE)
            blocks.insert(1 + int(rng.random() * count), f"```{language}\n{code}\n```")
        if rng.random() < 0.2:
            label, url = rng.choice(_LINKS)
            blocks.append(f"More in [{label}]({url}).")
        return "\n\n".join(blocks)

    def quoting(self, excerpt: str, handle: str, uri: str) -> str:
        """A reply that quotes another post: the quote, a link to the quoted post, then a
        body of its own. ``excerpt`` is Markdown (:meth:`excerpt` gives one)."""
        return f"[@{handle} wrote]({uri}):\n\n> {excerpt}\n\n{self.body()}"

    def excerpt(self, text: str, limit: int = 140) -> str:
        """The first line of the first plain paragraph of a Markdown body, for quoting
        it elsewhere: as Markdown that renders as that line's text (emphasis, code and
        links reduced to their text), cut to ``limit`` characters of what a reader sees.
        Cutting the source instead could split ``**bold**`` and leave ``**`` showing."""
        for paragraph in text.split("\n\n"):
            first = paragraph.split("\n", 1)[0].strip()
            if first and not first.startswith(("[@", ">", "```", "- ", "1. ")):
                break
        else:
            return "…"
        shown = self.plain_text(first).strip()
        if len(shown) > limit:
            shown = shown[: limit - 1].rstrip() + "…"
        return markdown_literal(shown)

    def plain_text(self, line: str) -> str:
        """What a reader sees of one line of inline Markdown."""
        parts: list[str] = []
        for token in self._markdown.parseInline(line):
            for child in token.children or ():
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append(" ")
                elif child.type == "image":
                    parts.append(child.content)
        return "".join(parts)

    def edit_note(self) -> str:
        return self._rng.choice(
            (
                "**Edit:** fixed a typo.",
                "**Edit:** added the measurements.",
                "**Update:** it works now, thanks all!",
                "**Edit:** wrong board, sorry.",
            )
        )

    def reason(self, kind: str) -> str:
        return self._rng.choice(REASONS[kind])

    def reaction(self) -> str:
        return self._rng.choice(REACTIONS)


# Inline syntax anywhere, and what opens a block at the start of a line (a heading, a
# list item, a thematic break): escaped with a backslash, which CommonMark allows before
# any ASCII punctuation.
_INLINE_SYNTAX = re.compile(r"([\\`*_\[\]<>!&~|])")
_BLOCK_START = re.compile(r"^(\s*)([#+=-]|\d+[.)])")


def markdown_literal(text: str) -> str:
    """Markdown that renders as ``text`` itself (one line; blanks around it dropped, as
    four leading ones would make it a code block)."""
    escaped = _INLINE_SYNTAX.sub(r"\\\1", text.strip())
    return _BLOCK_START.sub(lambda m: m[1] + m[2][:-1] + "\\" + m[2][-1], escaped)
