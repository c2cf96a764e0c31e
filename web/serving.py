"""Serving the app with waitress: an access log, and a graceful stop on SIGINT/SIGTERM."""

from __future__ import annotations

import ipaddress
import select
import signal
import sys
import threading
import time
from typing import Any


class AccessLog:
    """WSGI middleware: one line per request on stderr (method, path, status, duration); nothing on disk."""

    def __init__(self, wsgi_app: Any, stream: Any = None) -> None:
        self.wsgi_app = wsgi_app
        self.stream = stream or sys.stderr

    def __call__(self, environ: dict, start_response: Any) -> Any:
        started = time.perf_counter()
        status_holder: list[str] = []

        def recording_start_response(status: str, headers: list, exc_info: Any = None) -> Any:
            status_holder.append(status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, recording_start_response)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            path = environ.get("PATH_INFO", "")
            query = environ.get("QUERY_STRING")
            self.stream.write(f"{environ.get('REQUEST_METHOD')} {path}{'?' + query if query else ''} "
                              f"{status_holder[0] if status_holder else '-'} {elapsed_ms:.1f}ms\n")
            self.stream.flush()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve_until_signalled(server: Any) -> None:
    """Run waitress until SIGINT or SIGTERM; then stop accepting, let in-flight requests finish, return.

    The closing work runs inside the server loop (through waitress's trigger), never in the signal handler."""

    def close_listener() -> None:
        while select.select([server.socket], [], [], 0)[0]:  # take in connections the kernel already queued
            server.handle_accept()
        server.del_channel()  # then no new connections; the port is free at once
        server.socket.close()
        threading.Thread(target=close_when_idle, args=(server,), daemon=True).start()

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server.trigger.pull_trigger(close_listener)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.run()  # returns once every connection and the trigger are closed
    server.task_dispatcher.shutdown()


def close_when_idle(server: Any, timeout_s: float = 10.0) -> None:
    """Once no request is queued, running or unsent, close what is left: the server loop then ends."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server_busy(server):
        time.sleep(0.01)

    def close_all() -> None:
        for dispatcher in list(server._map.values()):
            dispatcher.close()

    server.trigger.pull_trigger(close_all)


def server_busy(server: Any, quiet_s: float = 0.1, first_words_s: float = 2.0) -> bool:
    """A request queued, running or half received, a response unsent, a connection that spoke within quiet_s, or
    one accepted within first_words_s that has not spoken yet: a client that connected just before the stop may
    send its request a moment later (on a busy machine, well over quiet_s), and must get its answer."""
    dispatcher = server.task_dispatcher
    now = time.time()
    channels = [c for c in list(server._map.values()) if hasattr(c, "last_activity")]
    return bool(dispatcher.queue) or dispatcher.active_count > 0 or any(
        c.requests or getattr(c, "request", None) is not None or c.total_outbufs_len
        or c.last_activity > now - quiet_s
        or (c.last_activity == c.creation_time and c.creation_time > now - first_words_s) for c in channels)


