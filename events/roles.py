"""The forum's permission names and the roles a new forum starts with (the original
atBB's defaults): one vocabulary for `atbb init`, the development network's scenarios
and the read side."""

from __future__ import annotations

from typing import Final

PERMISSION: Final = "space.atbb.permission."

POSTING: Final = ("createTopics", "createPosts", "react")
MODERATION: Final = ("banUsers", "lockTopics", "pinTopics", "moderatePosts")
MANAGE: Final = ("manageForum", "manageCategories", "manageRoles", "manageMembers",
                 "manageThemes")

# name, description, permissions (without the prefix; "*" is every one), priority
# (lower is more authority)
DEFAULT_ROLES: Final[tuple[tuple[str, str, tuple[str, ...], int], ...]] = (
    ("Owner", "Holds every permission.", ("*",), 0),
    ("Admin", "Runs the forum day to day.", MANAGE + MODERATION + POSTING, 10),
    ("Moderator", "Keeps the boards friendly.", MODERATION + POSTING, 20),
    ("Member", "Posts and reacts.", POSTING, 30),
)
