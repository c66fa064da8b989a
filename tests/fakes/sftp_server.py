"""A real SFTP server on 127.0.0.1 (paramiko), serving a temporary folder to the tests."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import paramiko
from paramiko import SFTPAttributes, SFTPHandle, SFTPServer, SFTPServerInterface
from paramiko.sftp import SFTP_FAILURE, SFTP_NO_SUCH_FILE, SFTP_OK, SFTP_PERMISSION_DENIED


@cache
def host_key() -> paramiko.PKey:
    """One generated host key per test session (ECDSA: fast to make)."""
    return paramiko.ECDSAKey.generate()


@dataclass
class Account:
    """Who may log in, and what the fake does besides serving files."""

    username: str = "islandhub"
    password: str = "s3cret-drop"
    public_key: paramiko.PKey | None = None
    hostile_names: list[str] = field(default_factory=list)  # injected into every listing
    logins: int = 0


class _Auth(paramiko.ServerInterface):
    def __init__(self, account: Account) -> None:
        self.account = account

    def get_allowed_auths(self, username: str) -> str:
        return "password,publickey"

    def check_auth_password(self, username: str, password: str) -> int:
        if (username, password) == (self.account.username, self.account.password):
            self.account.logins += 1
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        known = self.account.public_key
        if username == self.account.username and known is not None and key == known:
            self.account.logins += 1
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED


class _Handle(SFTPHandle):
    def stat(self) -> Any:
        return SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))


class _Folder(SFTPServerInterface):
    """Serves `root` as `/`; nothing outside it is reachable."""

    def __init__(self, server: Any, root: Path, account: Account) -> None:
        super().__init__(server)
        self.root, self.account = root, account

    def _real(self, path: str) -> Path:
        real = (self.root / self.canonicalize(path).lstrip("/")).resolve()
        if not real.is_relative_to(self.root):
            raise PermissionError(path)
        return real

    def canonicalize(self, path: str) -> str:
        return os.path.normpath("/" + path.replace("\\", "/"))

    def list_folder(self, path: str) -> Any:
        try:
            folder = self._real(path)
            entries = [self._attr(folder / name, name) for name in os.listdir(folder)]
        except OSError as exc:
            return SFTPServer.convert_errno(exc.errno)
        for name in self.account.hostile_names:
            attr = SFTPAttributes.from_stat(os.stat(folder))
            attr.st_mode = 0o100644
            attr.filename = name
            entries.append(attr)
        return entries

    def _attr(self, path: Path, name: str) -> SFTPAttributes:
        attr = SFTPAttributes.from_stat(os.lstat(path))
        attr.filename = name
        return attr

    def stat(self, path: str) -> Any:
        return self._stat(path, os.stat)

    def lstat(self, path: str) -> Any:
        return self._stat(path, os.lstat)

    def _stat(self, path: str, how: Any) -> Any:
        try:
            return SFTPAttributes.from_stat(how(self._real(path)))
        except FileNotFoundError:
            return SFTP_NO_SUCH_FILE
        except OSError:
            return SFTP_PERMISSION_DENIED

    def open(self, path: str, flags: int, attr: Any) -> Any:
        try:
            real = self._real(path)
            fd = os.open(real, flags, 0o600)
        except FileNotFoundError:
            return SFTP_NO_SUCH_FILE
        except OSError:
            return SFTP_PERMISSION_DENIED
        mode = "wb" if flags & os.O_WRONLY else "r+b" if flags & os.O_RDWR else "rb"
        handle = _Handle(flags)
        handle.filename = str(real)
        handle.readfile = handle.writefile = os.fdopen(fd, mode)
        return handle

    def rename(self, oldpath: str, newpath: str) -> int:
        try:
            target = self._real(newpath)
            if target.exists():
                return SFTP_FAILURE  # SFTP v3 rename never overwrites
            self._real(oldpath).rename(target)
        except OSError:
            return SFTP_FAILURE
        return SFTP_OK

    def mkdir(self, path: str, attr: Any) -> int:
        try:
            self._real(path).mkdir()
        except OSError:
            return SFTP_FAILURE
        return SFTP_OK


@dataclass
class SftpDrop:
    """A running server: where it listens, what it serves, and its host key."""

    host: str
    port: int
    root: Path
    account: Account
    host_key: paramiko.PKey

    def url(self, folder: str = "/") -> str:
        """The sftp:// address of a folder on this server."""
        return f"sftp://{self.host}:{self.port}{folder}"

    def known_hosts_line(self) -> str:
        """The server's key as an OpenSSH known_hosts line."""
        return f"[{self.host}]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}"


@contextmanager
def sftp_server(root: Path, account: Account | None = None) -> Iterator[SftpDrop]:
    """Serve `root` over SFTP on a free port of 127.0.0.1 until the block ends."""
    account = account or Account()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(1.0)
    stop = threading.Event()
    transports: list[paramiko.Transport] = []
    thread = threading.Thread(
        target=_serve, args=(listener, root.resolve(), account, stop, transports), daemon=True
    )
    thread.start()
    try:
        yield SftpDrop("127.0.0.1", listener.getsockname()[1], root.resolve(), account, host_key())
    finally:
        stop.set()
        with socket.create_connection(listener.getsockname(), timeout=1):
            pass  # wake the accept loop so that it sees the stop at once
        thread.join(timeout=5)
        for transport in transports:
            transport.close()
        listener.close()


def _serve(
    listener: socket.socket,
    root: Path,
    account: Account,
    stop: threading.Event,
    transports: list[paramiko.Transport],
) -> None:
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        if stop.is_set():
            conn.close()
            return
        conn.settimeout(None)
        transport = paramiko.Transport(conn)
        transport.add_server_key(host_key())
        transport.set_subsystem_handler("sftp", SFTPServer, _Folder, root=root, account=account)
        transports.append(transport)
        try:
            transport.start_server(server=_Auth(account))
        except (paramiko.SSHException, EOFError, OSError):
            transport.close()
