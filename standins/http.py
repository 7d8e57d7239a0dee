"""Serving a stand-in over HTTP on loopback (the SP-API and Shopware stand-ins): the standard
library's threaded server in a daemon thread, the plumbing of its request handler, and running a
stand-in in the foreground for ``python -m standins.<name>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def handle_error(self, request, client_address) -> None:
        # A client that timed out has closed its end before a slow answer went out; that is
        # what the "slow" fault is for, not a stand-in bug worth a traceback.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class StandinHandler(BaseHTTPRequestHandler):
    """A stand-in's request handler without its routes: a subclass answers in ``_dispatch``.
    ``standin`` is the stand-in that serves it."""

    standin: Any
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes; avoid 40 ms stalls

    def log_message(self, format, *args):  # silence the default stderr log
        pass

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def _dispatch(self, method: str) -> None:
        raise NotImplementedError

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _answer(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        """Writes one whole answer (no body to a HEAD request)."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class HttpStandin:
    """A stand-in served on ``host:port`` (port 0: a free one, in ``port`` once started) from a
    daemon thread, with the faults it was told to show on its next requests (``_faults``, read
    under ``_lock`` by the subclass's handler)."""

    def __init__(self, host: str, port: int, *, handler: type[StandinHandler], thread_name: str) -> None:
        """``handler`` answers the requests (its ``standin`` is this one); ``thread_name`` names
        the serving thread, with the port."""
        self.host, self.port = host, port
        self._handler, self._thread_name = handler, thread_name
        self._server: StandinServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()  # set while stopping: a slow answer stops waiting
        self._lock = threading.Lock()
        self._faults: list[Any] = []

    def start(self) -> Self:
        """Serve from now on (again after ``stop``, on the same port); a started one stays as it is."""
        if self._server is None:
            handler = type(self._handler.__name__, (self._handler,), {"standin": self})
            self._server = StandinServer((self.host, self.port), handler)
            self.port = self._server.server_address[1]
            self._stopping.clear()
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                            name=f"{self._thread_name}:{self.port}", daemon=True)
            self._thread.start()
        return self

    def hold(self, seconds: float) -> None:
        """Keep an answer back for ``seconds`` (a slow or hanging fault), or until the stand-in
        stops. Sleeps in short steps instead of waiting on the stop event with a timeout: under
        libfaketime (the suite runs with the machine's clock moved) a timed wait outlasts its
        timeout by far, while a sleep keeps to it."""
        end = time.monotonic() + seconds
        while not self._stopping.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.02))

    def stop(self) -> None:
        """Stop serving and close the port; a stopped one stays stopped."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add_fault(self, fault: Any) -> Any:
        """Misbehave as ``fault`` says on the next requests it matches; returns it."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Behave again."""
        with self._lock:
            self._faults.clear()


def options(prog: str, description: str, *, port: int, orders: int) -> argparse.ArgumentParser:
    """The options every stand-in runs with: --host, --port, --orders, --seed, --day."""
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=port)
    p.add_argument("--orders", type=int, default=orders)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--day", type=dt.date.fromisoformat, default=dt.date(2026, 11, 24))
    return p


def serve_until_stopped(standin: HttpStandin, banner: list[str]) -> int:
    """Print ``banner`` (where a started ``standin`` is, how to use it), keep it serving until
    Ctrl-C or SIGTERM, then stop it; the exit code 0."""
    print("\n".join(banner), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
        print("stopped", file=sys.stderr)
    return 0
