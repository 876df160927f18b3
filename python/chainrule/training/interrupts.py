"""Ctrl-C during ``fit``: honoured at the next step boundary, never mid-update."""

from __future__ import annotations

import contextlib
import signal
import threading


class InterruptGuard:
    """Turn the first Ctrl-C during ``fit`` into a request honoured at the next step boundary.

    The first SIGINT sets a flag; :meth:`check` (called between steps) raises
    ``KeyboardInterrupt`` there, so parameters and optimiser state are never left
    half-updated. A second SIGINT raises at once, except inside :meth:`atomic` (an update
    and its counters), where it raises at the block's end. Only active in the main thread with
    Python's default handler installed; elsewhere it changes nothing.
    """

    def __init__(self):
        self.requested = False
        self._old = None
        self._atomic = 0  # inside atomic(): a second Ctrl-C waits for its end
        self._forced = False

    def __enter__(self):
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            try:
                if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                    self._old = signal.signal(signal.SIGINT, self._handler)
            except (ValueError, OSError):  # not supported here (e.g. an embedded interpreter)
                self._old = None
        return self

    def _handler(self, signum, frame):
        if self.requested:
            if self._atomic:
                self._forced = True
                return
            raise KeyboardInterrupt
        self.requested = True

    @contextlib.contextmanager
    def atomic(self):
        """A block that a second Ctrl-C does not cut (an update and its counters): the
        interrupt is raised at the block's end instead."""
        self._atomic += 1
        try:
            yield
        finally:
            self._atomic -= 1
            if not self._atomic and self._forced:
                self._forced = self.requested = False
                raise KeyboardInterrupt

    def check(self):
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None
        return False
