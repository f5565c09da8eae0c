"""A loopback port in front of a real server: each connection is forwarded as it is, and the tap keeps
what the client sent (to read the Wyoming events a server was really given) and when the bytes went
each way (to measure what one request costs the network and the server). Not a double: the server
behind it answers."""
from __future__ import annotations

import io
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Tapped:
    """One forwarded connection."""

    sent: bytearray = field(default_factory=bytearray)  # client -> server, every byte
    received: int = 0  # server -> client, counted
    opened: float = field(default_factory=time.monotonic)
    last_sent: float = 0.0  # monotonic time of the client's last byte
    first_received: float = 0.0  # monotonic time of the server's first byte
    closed: threading.Event = field(default_factory=threading.Event)

    def events(self) -> list:
        """The Wyoming events the client sent on this connection."""
        from wyoming.event import read_event

        stream, events = io.BytesIO(bytes(self.sent)), []
        while (event := read_event(stream)) is not None:
            events.append(event)
        return events

    def server_s(self) -> float:
        """From the client's last byte to the server's first answer: the server's own time, as the wire sees it."""
        return max(0.0, self.first_received - self.last_sent) if self.first_received else 0.0


class Tap:
    def __init__(self, target_url: str):
        host, port = target_url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
        self.target = (host, int(port))
        self.scheme = target_url.split("://", 1)[0]
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.url = target_url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}", 1)
        self.connections: list[Tapped] = []
        self._lock = threading.Lock()

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.listener.close()

    def clear(self) -> None:
        with self._lock:
            self.connections = []

    def finished(self, timeout: float = 10.0) -> list[Tapped]:
        """The connections so far, once each has closed."""
        with self._lock:
            connections = list(self.connections)
        for tapped in connections:
            tapped.closed.wait(timeout)
        return connections

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            tapped = Tapped()
            with self._lock:
                self.connections.append(tapped)
            ends = [threading.Event(), threading.Event()]
            threading.Thread(target=self._pump, args=(client, server, tapped, True, ends), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, tapped, False, ends), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, tapped: Tapped, upstream: bool, ends) -> None:
        try:
            while data := source.recv(65536):
                now = time.monotonic()
                if upstream:
                    tapped.sent += data
                    tapped.last_sent = now
                else:
                    tapped.received += len(data)
                    tapped.first_received = tapped.first_received or now
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (sink, source):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            ends[0 if upstream else 1].set()
            if all(end.is_set() for end in ends):
                source.close()
                sink.close()
                tapped.closed.set()
