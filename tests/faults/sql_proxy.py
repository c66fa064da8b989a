"""A TCP proxy on 127.0.0.1 in front of a database server that breaks a seeded share of connections.

Each connection the proxy accepts is, with probability `rate`, broken in one of two ways:

- `refuse`: reset at once, before the database has said anything (the client's connect fails);
- `cut`: passed through until the server has sent a random number of bytes (somewhere in
  the login, the query or its rows), then reset on the client's side.

The others are passed through untouched. `dealt` counts the breaks by kind.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
from collections import Counter
from contextlib import suppress
from typing import Any


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0: closing sends a TCP reset instead of a clean FIN. SHUT_RD first wakes the
    # other pump thread blocked in recv() on this socket: until it returns, close() would
    # not release the socket, no reset would go out, and the client would wait forever.
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RD)
    with suppress(OSError):
        sock.close()


class ResettingProxy:
    """Forwards 127.0.0.1:<port> to `upstream`, breaking a share of the connections."""

    def __init__(self, upstream: tuple[str, int], *, seed: int = 1) -> None:
        self.upstream = upstream
        self.rate = 0.0
        self.kinds: tuple[str, ...] = ("refuse", "cut")
        self.cut_after = (200, 6000)  # bytes from the server before a cut
        self.dealt: Counter[str] = Counter()
        self.connections = 0
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._open: set[socket.socket] = set()
        self._stopped = threading.Event()

    @property
    def port(self) -> int:
        """The proxy's port on 127.0.0.1."""
        return int(self._listener.getsockname()[1])

    def faults(
        self,
        rate: float,
        kinds: tuple[str, ...] = ("refuse", "cut"),
        cut_after: tuple[int, int] = (200, 6000),
    ) -> None:
        """Break `rate` of the connections from now on, with `kinds`."""
        with self._lock:
            self.rate, self.kinds, self.cut_after = rate, kinds, cut_after

    def __enter__(self) -> ResettingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        with suppress(OSError):
            self._listener.close()
        with self._lock:
            for sock in list(self._open):
                with suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _pick(self) -> tuple[str | None, int]:
        with self._lock:
            self.connections += 1
            if self._rng.random() >= self.rate:
                return None, 0
            kind = self._rng.choice(self.kinds)
            self.dealt[kind] += 1
            return kind, self._rng.randint(*self.cut_after)

    def _serve(self, client: socket.socket) -> None:
        kind, budget = self._pick()
        if kind == "refuse":
            _reset(client)
            return
        try:
            server = socket.create_connection(self.upstream)
        except OSError:
            _reset(client)
            return
        with self._lock:
            self._open.update((client, server))
        to_server = threading.Thread(target=self._pump, args=(client, server, None), daemon=True)
        to_server.start()
        self._pump(server, client, budget if kind == "cut" else None)
        to_server.join(timeout=5)
        with self._lock:
            self._open.difference_update((client, server))

    def _pump(self, source: socket.socket, sink: socket.socket, budget: int | None) -> None:
        """Copy source to sink; with a budget, reset the client once that many bytes passed."""
        sent = 0
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if budget is not None and sent + len(data) >= budget:
                    sink.sendall(data[: max(0, budget - sent)])
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        if budget is not None:
            _reset(sink)  # the client: cut
            _close(source)
        else:
            _close(sink)
            _close(source)


def _close(sock: Any) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with suppress(OSError):
        sock.close()
