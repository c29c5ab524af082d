"""A TCP proxy for outage tests: clients connect to `proxy.port`, traffic goes to the server behind it. `cut()` is
what a database restart or a network blip does (every connection dropped, new ones refused); `restore()` ends it.

Run as a program (`python tests/tcp_proxy.py PORT TARGET_PORT`) it serves until killed: SIGUSR1 cuts, SIGUSR2
restores, for trying an outage by hand.
"""

from __future__ import annotations

import selectors
import signal
import socket
import sys
import threading


class TcpProxy:
    def __init__(self, target_port: int, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host, self.target_port = host, target_port
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._cut = False
        self._listener = self._listen(port)
        self.port = self._listener.getsockname()[1]
        self.connections = 0  # accepted since the start: tells that clients came back after a cut
        self._thread = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        self._thread.start()

    def _listen(self, port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, port))
        listener.listen(64)
        return listener

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            try:
                server = socket.create_connection((self.host, self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._cut or listener is not self._listener:  # cut while this one was being connected
                    client.close()
                    server.close()
                    continue
                self._pairs.append((client, server))
                self.connections += 1
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client: socket.socket, server: socket.socket) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, server)
            selector.register(server, selectors.EVENT_READ, client)
            while True:
                try:
                    for key, _ in selector.select(timeout=1.0):
                        data = key.fileobj.recv(65536)
                        if not data:
                            raise OSError("closed")
                        key.data.sendall(data)
                except (OSError, ValueError):
                    break
        for sock in (client, server):
            sock.close()

    def cut(self) -> None:
        """Drop every connection and refuse new ones, until restore()."""
        with self._lock:
            self._cut = True
            self._listener.close()
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        with self._lock:
            self._listener = self._listen(self.port)
            self._cut = False
        self._thread = threading.Thread(target=self._accept, args=(self._listener,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.cut()


if __name__ == "__main__":
    proxy = TcpProxy(int(sys.argv[2]), int(sys.argv[1]))
    signal.signal(signal.SIGUSR1, lambda *_: proxy.cut())
    signal.signal(signal.SIGUSR2, lambda *_: proxy.restore())
    print(f"proxy 127.0.0.1:{proxy.port} -> {sys.argv[2]}; kill -USR1 cuts, -USR2 restores", flush=True)
    threading.Event().wait()
