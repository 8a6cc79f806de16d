"""Turning read-model views into the API's JSON: camelCase keys, ISO 8601 times, large
integers as strings where the API says so."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def to_json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            camel(f.name): to_json(getattr(value, f.name)) for f in dataclasses.fields(value)
            if f.metadata.get("api", True)
        }
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | frozenset | set):
        items = sorted(value) if isinstance(value, frozenset | set) else value
        return [to_json(v) for v in items]
    return value
