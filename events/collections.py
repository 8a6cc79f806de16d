"""The NSIDs of the `space.atbb.*` record collections (lexicons.md), named once."""

from __future__ import annotations

NAMESPACE = "space.atbb."
FORUM = "space.atbb.forum.forum"
CATEGORY = "space.atbb.forum.category"
BOARD = "space.atbb.forum.board"
ROLE = "space.atbb.forum.role"
ROLE_ASSIGNMENT = "space.atbb.forum.roleAssignment"
THEME = "space.atbb.forum.theme"
THEME_POLICY = "space.atbb.forum.themePolicy"
MOD_ACTION = "space.atbb.modAction"
MEMBERSHIP = "space.atbb.membership"
POST = "space.atbb.post"
REACTION = "space.atbb.reaction"
