"""An SFTP drop folder for the files connector: list, download, archive, with host keys checked.

The server's host key is verified by default, against an OpenSSH `known_hosts` file or a
pinned `SHA256:` fingerprint; an unknown host is refused unless the system file says
`insecure_skip_host_key_check: true` (logged as a warning on every connection). The hub's
own SSH keys and agent are never offered: only the credentials in the system file.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import io
import logging
import posixpath
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paramiko

from islandhub import secrets
from islandhub.errors import ConfigError, FatalSourceError, RetriableSourceError

log = logging.getLogger(__name__)

DEFAULT_PORT = 22
DEFAULT_TIMEOUT = 30.0
KEEPALIVE_SECONDS = 30
CHUNK = 1 << 20
KEY_TYPES: tuple[type[paramiko.PKey], ...] = (
    paramiko.Ed25519Key,
    paramiko.ECDSAKey,
    paramiko.RSAKey,
)


@dataclass(frozen=True)
class RemoteFile:
    """A regular file in the remote drop folder, as the listing describes it."""

    name: str
    size: int
    mtime: int

    @property
    def listed(self) -> str:
        """What the listing alone tells about the content: `size:mtime`."""
        return f"{self.size}:{self.mtime}"


def host_key_fingerprint(key: paramiko.PKey) -> str:
    """The key's fingerprint as OpenSSH prints it: `SHA256:` and unpadded base64."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def is_safe_name(name: str) -> bool:
    """A listed name that can only mean a file in the folder itself (no `/`, `..`, NUL)."""
    return bool(name) and not any(bad in name for bad in ("/", "\\", "\0", ".."))


class UnknownHostKeyError(paramiko.SSHException):
    """The server offered a host key nobody vouched for."""

    def __init__(self, where: str, offered: str, expected: str | None) -> None:
        if expected:
            message = f"host key of {where} is {offered}, but host_key pins {expected}"
        else:
            message = (
                f"host key of {where} ({offered}) is not known: add it to the known_hosts file "
                f"or set host_key: {offered} once its owner has confirmed it"
            )
        super().__init__(message)


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Accept a host missing from known_hosts only when its key matches the pinned one."""

    def __init__(self, where: str, pinned: str | None, insecure: bool) -> None:
        self.where, self.pinned, self.insecure = where, pinned, insecure

    def missing_host_key(self, client: Any, hostname: str, key: paramiko.PKey) -> None:
        offered = host_key_fingerprint(key)
        if self.pinned == offered:
            return
        if self.insecure and not self.pinned:
            log.warning(
                "%s: host key %s NOT verified (insecure_skip_host_key_check is on)",
                self.where,
                offered,
            )
            return
        raise UnknownHostKeyError(self.where, offered, self.pinned)


class SftpDrop:
    """The connection settings of an `sftp://host:port/folder` drop, checked up front."""

    def __init__(self, connection: Mapping[str, Any], root: Path | None) -> None:
        url = urlsplit(str(connection["path"]))
        if url.username or url.password:
            raise ConfigError(
                "connection.path: put the user in `username` and the password in "
                "`password: {secret: NAME}`, not in the sftp:// address"
            )
        if not url.hostname:
            raise ConfigError("connection.path: an sftp:// address needs a host")
        self.host = url.hostname
        self.port = url.port or DEFAULT_PORT
        self.folder = _remote_folder(url.path)
        self.where = f"sftp://{self.host}:{self.port}/{self.folder.lstrip('/')}"
        self.username = str(connection.get("username", ""))
        self.password = secrets.reveal(connection.get("password"))
        self.private_key = secrets.reveal(connection.get("private_key"))
        self.passphrase = secrets.reveal(connection.get("private_key_passphrase"))
        self.known_hosts = _known_hosts(connection.get("known_hosts"), root)
        self.pinned = connection.get("host_key")
        self.insecure = bool(connection.get("insecure_skip_host_key_check", False))
        self.timeout = float(connection.get("timeout", DEFAULT_TIMEOUT))
        if not self.username or not (self.password or self.private_key):
            raise ConfigError(
                "connection: an sftp:// drop needs `username` and `password` or `private_key`"
            )

    @contextmanager
    def session(self) -> Iterator[SftpSession]:
        """A logged-in SFTP session with a private scratch folder; both closed afterwards."""
        client = self._client()
        try:
            self._connect(client)
            sftp = client.open_sftp()
            with tempfile.TemporaryDirectory(prefix="islandhub-sftp-") as scratch:
                yield SftpSession(self, sftp, Path(scratch))
        finally:
            client.close()

    def _client(self) -> paramiko.SSHClient:
        client = paramiko.SSHClient()
        if self.known_hosts is not None:
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_HostKeyPolicy(self.where, self.pinned, self.insecure))
        return client

    def _connect(self, client: paramiko.SSHClient) -> None:
        try:
            client.connect(
                self.host,
                self.port,
                username=self.username,
                password=self.password or None,
                pkey=self._pkey(),
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                allow_agent=False,  # never offer the hub's own keys
                look_for_keys=False,
            )
        except paramiko.AuthenticationException as exc:
            raise FatalSourceError(
                f"{self.where}: login refused for user {self.username!r}: "
                "wrong username, password or private_key"
            ) from exc
        except paramiko.BadHostKeyException as exc:
            raise FatalSourceError(
                f"{self.where}: host key {host_key_fingerprint(exc.key)} does not match the "
                "known_hosts file: refusing to connect (the server changed, or someone is "
                "in between)"
            ) from exc
        except UnknownHostKeyError as exc:
            raise FatalSourceError(f"refused: {exc}") from exc
        except (paramiko.SSHException, OSError) as exc:
            raise RetriableSourceError(f"{self.where}: cannot connect: {exc}") from exc
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(KEEPALIVE_SECONDS)

    def _pkey(self) -> paramiko.PKey | None:
        if not self.private_key:
            return None
        for key_type in KEY_TYPES:
            try:
                return key_type.from_private_key(
                    io.StringIO(str(self.private_key)), password=self.passphrase or None
                )
            except paramiko.PasswordRequiredException as exc:
                raise FatalSourceError(
                    "private_key is encrypted: set private_key_passphrase"
                ) from exc
            except (paramiko.SSHException, ValueError):
                continue
        raise FatalSourceError(
            "private_key is not a private key paramiko can read (RSA, ECDSA or Ed25519, "
            "PEM or OpenSSH format), or its passphrase is wrong"
        )


class SftpSession:
    """One logged-in session: list the drop folder, download a file, archive a file."""

    def __init__(self, drop: SftpDrop, sftp: paramiko.SFTPClient, scratch: Path) -> None:
        self.drop, self.sftp, self.scratch = drop, sftp, scratch

    def count(self) -> int:
        """How many entries the drop folder holds (for check())."""
        return len(self._listing(self.drop.folder))

    def files(self, pattern: str) -> list[RemoteFile]:
        """Regular files whose name matches `pattern`, by name; links are not followed."""
        if "/" in pattern or "\\" in pattern:
            raise FatalSourceError(
                f"file pattern {pattern!r}: over SFTP a pattern names files in "
                f"{self.drop.where} itself, without folders"
            )
        found = []
        for attr in self._listing(self.drop.folder):
            name = attr.filename
            if not is_safe_name(name):
                log.warning(
                    "%s: skipped a listed name that is not a plain file name: %r",
                    self.drop.where,
                    name,
                )
                continue
            if stat.S_ISREG(attr.st_mode or 0) and fnmatch.fnmatchcase(name, pattern):
                found.append(RemoteFile(name, int(attr.st_size or 0), int(attr.st_mtime or 0)))
        return sorted(found, key=lambda f: f.name)

    def download(self, remote: RemoteFile) -> tuple[Path, str]:
        """Copy a file into the scratch folder; its local path and `size:mtime:hash`."""
        local = self.scratch / remote.name
        digest = hashlib.blake2b(digest_size=16)
        try:
            with self.sftp.open(self._path(remote.name), "rb") as source, local.open("wb") as out:
                source.prefetch(remote.size)
                for chunk in iter(lambda: source.read(CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise _io_error(f"{self.drop.where}/{remote.name}: cannot download", exc) from exc
        return local, f"{remote.listed}:{digest.hexdigest()}"

    def discard(self, local: Path) -> None:
        """Remove a downloaded copy as soon as it is read (personal data)."""
        local.unlink(missing_ok=True)

    def archive(self, remote: RemoteFile, folder: str) -> str:
        """Rename a file into `folder` (created if missing) on the server; its new name."""
        target = posixpath.join(self.drop.folder, folder)
        try:
            self._makedirs(folder)
            name = free_name({a.filename for a in self._listing(target)}, remote.name)
            self.sftp.rename(self._path(remote.name), posixpath.join(target, name))
        except OSError as exc:
            raise _io_error(f"{self.drop.where}: cannot archive {remote.name}", exc) from exc
        return posixpath.join(folder, name)

    def _makedirs(self, folder: str) -> None:
        path = self.drop.folder
        for part in folder.split("/"):
            path = posixpath.join(path, part)
            try:
                self.sftp.stat(path)
            except FileNotFoundError:
                self.sftp.mkdir(path, mode=0o700)

    def _listing(self, folder: str) -> list[paramiko.SFTPAttributes]:
        try:
            return self.sftp.listdir_attr(folder)
        except OSError as exc:
            raise _io_error(f"{self.drop.where}: cannot list {folder}", exc) from exc

    def _path(self, name: str) -> str:
        return posixpath.join(self.drop.folder, name)


def free_name(taken: set[str], name: str) -> str:
    """`name`, or `stem~2.ext`, `stem~3.ext`, ... whichever is not taken yet."""
    if name not in taken:
        return name
    stem, dot, suffix = name.rpartition(".")
    if not stem:
        stem, dot, suffix = name, "", ""
    number = 2
    while f"{stem}~{number}{dot}{suffix}" in taken:
        number += 1
    return f"{stem}~{number}{dot}{suffix}"


def _io_error(message: str, exc: OSError) -> FatalSourceError | RetriableSourceError:
    """Missing or forbidden paths will not fix themselves; other I/O errors may."""
    detail = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError | PermissionError):
        return FatalSourceError(f"{message}: {detail}")
    return RetriableSourceError(f"{message}: {detail}")


def _remote_folder(url_path: str) -> str:
    """The URL's path as the server's folder: `/srv/x` absolute, `/~/x` in the login folder."""
    if url_path in ("", "/~", "/~/"):
        return "."
    if url_path.startswith("/~/"):
        return url_path[3:].rstrip("/") or "."
    return url_path.rstrip("/") or "/"


def _known_hosts(value: Any, root: Path | None) -> Path | None:
    if not value:
        return None
    path = Path(str(value))
    if not path.is_absolute() and root is not None:
        path = root / path
    if not path.is_file():
        raise ConfigError(f"connection.known_hosts: file {path} not found")
    return path
