"""Faults the devnet Jetstream server injects on demand, so consumers are tested against
the failures real hosts produce: dropped connections, re-deliveries, garbage frames,
silent stalls, hung connections and refused upgrades.

A fault is armed on a :class:`FaultPlan` (from Python, or as JSON through the server's
``POST /_devnet/faults``) and fires ``times`` times (``None``: until cleared). A
connection *claims* a firing: a ``Disconnect`` or ``Stall`` claimed by one connection does
not also hit another one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass
from types import MappingProxyType
from typing import Any, TypeAlias, TypeVar

DEFAULT_MALFORMED = '{"did":"did:plc:devnetmalformed","time_us":'


class FaultError(ValueError):
    """A fault description that cannot be armed; the message says why."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Close the connection after sending ``after`` more events (0: at once)."""

    after: int = 0
    times: int | None = 1


@dataclass(frozen=True, slots=True)
class Resend:
    """Send past events again (duplicates): the connection's ``last`` sent events, or the
    history events with ``from_us <= time_us <= to_us`` that pass its filters."""

    last: int | None = None
    from_us: int | None = None
    to_us: int | None = None
    times: int | None = 1


@dataclass(frozen=True, slots=True)
class Malformed:
    """Send a frame that is not a valid event: ``payload`` as a text frame, or as a binary
    frame (which a zstd reader cannot decompress) when ``binary``."""

    payload: str = DEFAULT_MALFORMED
    binary: bool = False
    times: int | None = 1


@dataclass(frozen=True, slots=True)
class Stall:
    """Stop sending, without closing, for ``seconds`` (events queue up meanwhile)."""

    seconds: float
    times: int | None = 1


@dataclass(frozen=True, slots=True)
class Hang:
    """Go dead without closing for ``seconds``: no events and no answer to pings, as a
    connection a middlebox dropped or a hung server looks from the client (a ``Stall``
    still answers pings: it is only a quiet stream)."""

    seconds: float
    times: int | None = 1


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer websocket upgrades with HTTP 503: every attempt for ``seconds`` after arming,
    or the next ``times`` attempts, or both limits together (whichever ends first)."""

    seconds: float | None = None
    times: int | None = None


Fault: TypeAlias = Disconnect | Resend | Malformed | Stall | Hang | Refuse
F = TypeVar("F", Disconnect, Resend, Malformed, Stall, Hang, Refuse)

_KINDS: Mapping[str, type[Fault]] = MappingProxyType(
    {
        "disconnect": Disconnect,
        "resend": Resend,
        "malformed": Malformed,
        "stall": Stall,
        "hang": Hang,
        "refuse": Refuse,
    }
)
_NAMES: Mapping[type[Fault], str] = MappingProxyType(
    {kind: name for name, kind in _KINDS.items()}
)


@dataclass(frozen=True, slots=True)
class ArmedFault:
    """A fault on the plan: how many firings remain (None: unlimited) and when it was armed
    (monotonic seconds)."""

    fault: Fault
    remaining: int | None
    armed_at: float


def _check(fault: Fault) -> None:
    times = fault.times
    if times is not None and times < 1:
        raise FaultError(f"times must be at least 1 (or null for unlimited), got {times}")
    if isinstance(fault, Disconnect) and fault.after < 0:
        raise FaultError(f"after must be 0 or more, got {fault.after}")
    if isinstance(fault, Resend):
        if fault.last is None and fault.from_us is None and fault.to_us is None:
            raise FaultError("resend needs 'last' or a 'from_us'/'to_us' range")
        if fault.last is not None and (fault.from_us is not None or fault.to_us is not None):
            raise FaultError("resend takes either 'last' or a time range, not both")
        if fault.last is not None and fault.last < 1:
            raise FaultError(f"last must be at least 1, got {fault.last}")
        if fault.from_us is not None and fault.to_us is not None and fault.from_us > fault.to_us:
            raise FaultError("from_us must not be after to_us")
    if isinstance(fault, Stall | Hang) and not fault.seconds > 0:
        raise FaultError(f"{_NAMES[type(fault)]} seconds must be positive,"
                         f" got {fault.seconds}")
    if isinstance(fault, Refuse):
        if fault.seconds is None and fault.times is None:
            raise FaultError("refuse needs 'seconds', 'times' or both")
        if fault.seconds is not None and not fault.seconds > 0:
            raise FaultError(f"refuse seconds must be positive, got {fault.seconds}")


_NUMBER_FIELDS = frozenset({"seconds"})
_INT_FIELDS = frozenset({"after", "times", "last", "from_us", "to_us"})


def fault_from_json(data: object) -> Fault:
    """A fault from its JSON form, e.g. ``{"fault": "disconnect", "after": 5}``; raises
    :class:`FaultError` with the reason for anything else."""
    if not isinstance(data, dict):
        raise FaultError("a fault is a JSON object with a 'fault' name")
    name = data.get("fault")
    if not isinstance(name, str) or name not in _KINDS:
        raise FaultError(f"unknown fault {name!r}; expected one of {', '.join(sorted(_KINDS))}")
    kind = _KINDS[name]
    fields = kind.__dataclass_fields__
    unknown = sorted(set(data) - set(fields) - {"fault"})
    if unknown:
        raise FaultError(f"{name} takes {', '.join(fields)}; unknown: {', '.join(unknown)}")
    arguments: dict[str, Any] = {}
    for key, spec in fields.items():
        if key not in data:
            if spec.default is MISSING:
                raise FaultError(f"{name} needs {key!r}")
            continue
        value = data[key]
        if value is None and spec.default is not None and key != "times":
            raise FaultError(f"{name}.{key} must not be null")
        if value is not None:
            _check_type(name, key, value)
        arguments[key] = value
    fault = kind(**arguments)
    _check(fault)
    return fault


def _check_type(name: str, key: str, value: object) -> None:
    if key in _INT_FIELDS:
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif key in _NUMBER_FIELDS:
        ok, expected = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    elif key == "binary":
        ok, expected = isinstance(value, bool), "a boolean"
    else:
        ok, expected = isinstance(value, str), "a string"
    if not ok:
        raise FaultError(f"{name}.{key} must be {expected}, got {type(value).__name__}")


def fault_to_json(fault: Fault) -> dict[str, Any]:
    body: dict[str, Any] = {"fault": _NAMES[type(fault)]}
    for key in type(fault).__dataclass_fields__:
        body[key] = getattr(fault, key)
    return body


class FaultPlan:
    """The armed faults, consumed by the server's connections. Thread-safe, so tests may
    arm faults from any thread while the server runs its event loop."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._armed: list[ArmedFault] = []
        self._version = 0

    @property
    def version(self) -> int:
        """Changes whenever a fault is armed or cleared (not when one fires), so a waiting
        connection knows there is something new to claim."""
        return self._version

    @property
    def armed_count(self) -> int:
        """How many faults are armed: a lock-free check for the per-event fast path."""
        return len(self._armed)

    def arm(self, fault: Fault) -> None:
        _check(fault)
        with self._lock:
            self._armed.append(ArmedFault(fault, fault.times, self._monotonic()))
            self._version += 1

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
            self._version += 1

    def armed(self) -> list[ArmedFault]:
        with self._lock:
            self._expire_refusals()
            return list(self._armed)

    def take(self, kind: type[F]) -> F | None:
        """Claims one firing of the oldest armed fault of this kind."""
        with self._lock:
            for index, armed in enumerate(self._armed):
                if isinstance(armed.fault, kind):
                    self._consume(index)
                    return armed.fault
            return None

    def refuse_connection(self) -> bool:
        """Whether a websocket upgrade arriving now must be refused (claims one firing)."""
        with self._lock:
            self._expire_refusals()
            for index, armed in enumerate(self._armed):
                if isinstance(armed.fault, Refuse):
                    self._consume(index)
                    return True
            return False

    def _consume(self, index: int) -> None:
        armed = self._armed[index]
        if armed.remaining is None:
            return
        if armed.remaining <= 1:
            del self._armed[index]
        else:
            self._armed[index] = ArmedFault(armed.fault, armed.remaining - 1, armed.armed_at)

    def _expire_refusals(self) -> None:
        now = self._monotonic()
        self._armed = [
            armed
            for armed in self._armed
            if not (
                isinstance(armed.fault, Refuse)
                and armed.fault.seconds is not None
                and now - armed.armed_at >= armed.fault.seconds
            )
        ]
