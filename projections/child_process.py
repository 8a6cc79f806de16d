"""What the appview's worker processes share: how a parent starts one (a fresh
interpreter running a module of this checkout) and how the child ties its life to the
parent's."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from pathlib import Path


def module_command(module: str) -> list[str]:
    """``python -m module`` with this interpreter."""
    return [sys.executable, "-m", module]


def child_environment() -> dict[str, str]:
    """This process's environment, with this checkout's packages importable whatever the
    child's working directory."""
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def end_with_parent() -> None:
    """In the child: on Linux the kernel sends SIGKILL when the parent thread that started
    it ends (PR_SET_PDEATHSIG); elsewhere the child's own watch of its pipes ends it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
