"""A wrong DATABASE_URL or SQLite location: one line naming what is wrong, no password,
exit status 2, within seconds, from every command that opens the configured storage.
PostgreSQL failures are the real server's on 127.0.0.1:5432 (a database and a role
that do not exist), a closed port, an unresolvable host; a wrong password comes from a
server speaking the PostgreSQL protocol that refuses it (the test server trusts every
local login)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from appview.cli import cli
from appview.cli.storage import StandaloneCommand
from events.store_postgres import redact
from tests.conftest import require_postgres
from web.cli import demo, serve

ROOT = Path(__file__).resolve().parent.parent
SECRET = "pw-s3cret-XYZ"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _message(field: bytes, value: str) -> bytes:
    return field + value.encode() + b"\0"


class PasswordRefusingServer:
    """Answers a PostgreSQL client as a server whose password check fails: refuses SSL,
    asks for a cleartext password, replies FATAL 28P01."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self.port = int(self._socket.getsockname()[1])
        self.passwords: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with connection:
                self._answer(connection)

    def _answer(self, connection: socket.socket) -> None:
        connection.settimeout(5)
        while True:
            length, code = struct.unpack("!ii", _read(connection, 8))
            body = _read(connection, length - 8)
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                connection.sendall(b"N")
                continue
            break  # the StartupMessage (protocol 3.0) and its parameters
        del body
        connection.sendall(b"R" + struct.pack("!ii", 8, 3))  # cleartext password, please
        kind = _read(connection, 1)
        (length,) = struct.unpack("!i", _read(connection, 4))
        password = _read(connection, length - 4)
        if kind == b"p":
            self.passwords.append(password.rstrip(b"\0"))
        fields = (_message(b"S", "FATAL") + _message(b"V", "FATAL")
                  + _message(b"C", "28P01")
                  + _message(b"M", 'password authentication failed for user "alice"') + b"\0")
        connection.sendall(b"E" + struct.pack("!i", len(fields) + 4) + fields)

    def close(self) -> None:
        self._socket.close()


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise OSError("client went away")
        data += chunk
    return data


@pytest.fixture
def refusing_server() -> Iterator[PasswordRefusingServer]:
    server = PasswordRefusingServer()
    try:
        yield server
    finally:
        server.close()


def _invoke(args: list[str], env: dict[str, str]) -> tuple[int, list[str], float]:
    started = time.monotonic()
    result = CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.output.strip().splitlines(), time.monotonic() - started


@pytest.mark.parametrize(("url", "expected"), [
    (f"postgresql://postgres:{SECRET}@127.0.0.1:5432/atbb_no_such_db",
     'no such database "atbb_no_such_db"'),
    (f"postgresql://atbb_no_such_role:{SECRET}@127.0.0.1:5432/test",
     'no such role "atbb_no_such_role"'),
    (f"postgresql://postgres:{SECRET}@nohost.invalid:5432/test",
     'unknown host "nohost.invalid"'),
    (f"postgresql://postgres:{SECRET}@127.0.0.1:{{closed}}/test",
     "connection refused by 127.0.0.1:{closed}"),
])
def test_a_wrong_database_url_is_one_line_without_the_password(
    url: str, expected: str, tmp_path: Path,
) -> None:
    require_postgres()
    closed = _closed_port()
    url, expected = url.format(closed=closed), expected.format(closed=closed)
    code, lines, seconds = _invoke(["status"], {"DATABASE_URL": url,
                                                "DATA_DIR": str(tmp_path / "data")})
    assert code == 2
    assert len(lines) == 1, lines
    assert expected in lines[0]
    assert SECRET not in lines[0]
    assert redact(url) in lines[0]
    assert seconds < 5


def test_a_refused_password_is_named_and_not_shown(
    refusing_server: PasswordRefusingServer, tmp_path: Path,
) -> None:
    url = f"postgresql://alice:{SECRET}@127.0.0.1:{refusing_server.port}/forum"
    code, lines, _ = _invoke(["status"], {"DATABASE_URL": url,
                                          "DATA_DIR": str(tmp_path / "data")})
    assert code == 2
    assert lines == [f"Error: DATABASE_URL=postgresql://alice@127.0.0.1:"
                     f"{refusing_server.port}/forum: authentication failed for role "
                     '"alice" (wrong password?)']
    assert refusing_server.passwords == [SECRET.encode()]  # the probe really asked


@pytest.mark.parametrize("url", [
    f"postgresql://postgres:{SECRET}@127.0.0.1:5432/",
    f"postgresql://:{SECRET}@127.0.0.1:5432/test",
    f"postgresql://postgres:{SECRET}@127.0.0.1:port/test",
    f"postgresql://postgres:{SECRET}@127.0.0.1:5432/test?host=/run/postgresql",
])
def test_a_malformed_postgresql_url_is_one_line_without_the_password(
    url: str, tmp_path: Path,
) -> None:
    code, lines, _ = _invoke(["status"], {"DATABASE_URL": url,
                                          "DATA_DIR": str(tmp_path / "data")})
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("Error: DATABASE_URL=postgresql://")
    assert SECRET not in lines[0]


def _leaf_commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_command_that_opens_the_storage_refuses_a_missing_database(
    tmp_path: Path,
) -> None:
    require_postgres()
    env = {"DATABASE_URL": f"postgresql://postgres:{SECRET}@127.0.0.1:5432/atbb_no_such_db",
           "DATA_DIR": str(tmp_path / "data")}
    checked = []
    for path, command in _leaf_commands(cli):
        if isinstance(command, StandaloneCommand):
            continue
        # The check comes before the command's own arguments are read.
        code, lines, seconds = _invoke(list(path), env)
        assert code == 2, (path, lines)
        assert lines == ["Error: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/"
                         'atbb_no_such_db: no such database "atbb_no_such_db"'], path
        assert seconds < 5, path
        checked.append(" ".join(path))
    assert cli.commands["serve"] is serve  # the web's commands are in the group too
    assert {"serve", "ingest", "status", "project", "backfill", "rebuild", "verify",
            "events append", "events import", "admin token create"} <= set(checked)


def test_the_console_script_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "data"),
           "DATABASE_URL": f"postgresql://postgres:{SECRET}@nohost.invalid:5432/test"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "web", "ingest"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        'Error: DATABASE_URL=postgresql://postgres@nohost.invalid:5432/test: '
        'unknown host "nohost.invalid"']
    assert time.monotonic() - started < 10  # the interpreter's start included


def test_an_explicit_sqlite_file_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "data"),
           "DATABASE_URL": "sqlite:///missing_dir/x"}
    result = subprocess.run([sys.executable, "-m", "web", "status"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "Error: DATABASE_URL=sqlite:///missing_dir/x: the folder missing_dir does not exist "
        "(atbb creates the database file, not the folders above it)"]
    assert not (tmp_path / "missing_dir").exists()


def test_a_data_dir_in_a_missing_folder_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "typo" / "data"
    code, lines, _ = _invoke(["status"], {"DATA_DIR": str(data_dir), "DATABASE_URL": ""})
    assert code == 2
    assert lines == [f"Error: DATA_DIR={data_dir}: the folder {tmp_path / 'typo'} does not "
                     "exist (atbb creates DATA_DIR, not the folders above it)"]
    assert not (tmp_path / "typo").exists()


def test_a_missing_data_dir_is_made_when_its_folder_exists(tmp_path: Path) -> None:
    code, _, _ = _invoke(["status"], {"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": ""})
    assert code == 0
    assert (tmp_path / "data" / "events.sqlite3").exists()
    named = tmp_path / "log.sqlite3"
    code, _, _ = _invoke(["status"], {"DATA_DIR": str(tmp_path / "data"),
                                      "DATABASE_URL": f"sqlite:///{named}"})
    assert code == 0 and named.exists()


@pytest.mark.parametrize(("url", "message"), [
    ("sqlite:///", "names no file"),
    ("sqlite:///{tmp}", "names a folder, not a database file"),
])
def test_a_sqlite_url_naming_no_file_is_refused(url: str, message: str,
                                                 tmp_path: Path) -> None:
    code, lines, _ = _invoke(["status"], {"DATABASE_URL": url.format(tmp=tmp_path),
                                          "DATA_DIR": str(tmp_path / "data")})
    assert code == 2 and len(lines) == 1 and message in lines[0]


def test_commands_with_storage_of_their_own_are_not_checked(tmp_path: Path) -> None:
    standalone = {" ".join(path) for path, command in _leaf_commands(cli)
                  if isinstance(command, StandaloneCommand)}
    assert standalone == {"demo", "devnet", "replay"}
    assert cli.commands["demo"] is demo
    empty = tmp_path / "empty.jsonl"
    empty.write_text('{"format": "atbb-event-log", "version": 1, "forum_did": "", '
                     '"since": 0, "until": null, "head": 0}\n')
    result = CliRunner().invoke(cli, ["replay", str(empty), "--db", str(tmp_path / "r")],
                                env={"DATABASE_URL": "postgresql://postgres@nohost.invalid/x",
                                     "DATA_DIR": str(tmp_path / "no" / "data")})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://alice:s3cret@db:5432/x", "postgresql://alice@db:5432/x"),
    ("postgresql://alice:p%40ss@db/x", "postgresql://alice@db/x"),
    ("postgresql://alice@db/x", "postgresql://alice@db/x"),
    ("sqlite:///data/events.sqlite3", "sqlite:///data/events.sqlite3"),
])
def test_redact_drops_only_the_password(url: str, shown: str) -> None:
    assert redact(url) == shown
