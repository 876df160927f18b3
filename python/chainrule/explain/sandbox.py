"""Running a learner's code under a time limit, with its exceptions and exits as findings.

Two layers:

* :func:`call_limited` runs one call in this process. A pure-Python loop that never ends is
  interrupted after ``timeout`` seconds: by ``SIGALRM`` in the main thread (Unix), else by
  an exception raised asynchronously in the calling thread from a watchdog. ``SystemExit``
  (``sys.exit``) and ``KeyboardInterrupt`` raised inside the code become findings, not exits.
  NumPy's global random state is restored afterwards (course code calls ``np.random.seed``),
  and what the code prints is kept out of the report.
* :func:`run_isolated` runs a whole command (``chainrule doctor``, ``chainrule gradcheck
  --function``) in a child process with a hard wall-clock limit. Only this catches what no
  exception can: ``os._exit``, a crash, a loop inside compiled code. The child's numba and
  BLAS state dies with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import signal
import subprocess
import sys
import tempfile
import threading
import traceback

import numpy as np

from .source import in_library

#: seconds one call of the learner's code may take (``--time-limit``, ``timeout=``)
DEFAULT_TIME_LIMIT = 10.0


class UserCodeTimeout(BaseException):
    """Raised inside the learner's code when it runs past the time limit."""


@contextlib.contextmanager
def _alarm(timeout):
    """Raise :class:`UserCodeTimeout` in this thread after ``timeout`` seconds."""
    if not timeout:
        yield
        return
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        def handler(signum, frame):
            raise UserCodeTimeout()

        previous = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return
    target = threading.get_ident()
    done = threading.Event()
    lock = threading.Lock()
    fired = []

    def watchdog():
        if not done.wait(timeout):
            with lock:
                if not done.is_set():
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(target), ctypes.py_object(UserCodeTimeout))
                    fired.append(True)

    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    try:
        yield
    finally:
        with lock:
            done.set()
        thread.join()
        if fired:  # raised already, or still pending: clear it so it cannot fire later
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)


def _where(exc, fn_name):
    """`` (at helper, line n: code)`` for the frame that raised, outside this module and
    outside Python's and the installed packages' own code (an error numpy raises for the
    learner's ``np.squre`` is the learner's line, not a helper's)."""
    tb = [f for f in traceback.extract_tb(exc.__traceback__)
          if os.path.abspath(f.filename) != os.path.abspath(__file__)
          and not in_library(f.filename)]
    if not tb:
        return "", None
    frame = tb[-1]
    return f" (at {frame.name}, line {frame.lineno}: {frame.line})", frame.name


def call_limited(fn, args, timeout=DEFAULT_TIME_LIMIT, kwargs=None):
    """``(result, None)``, or ``(None, (exception, summary, kind))`` with kind one of
    ``"raises"``, ``"raises_in_helper"``, ``"signature"``, ``"timed_out"``, ``"exits"``."""
    name = getattr(getattr(fn, "__code__", None), "co_name", None) or getattr(
        fn, "__name__", "the function")
    state = np.random.get_state()
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), np.errstate(all="ignore"), _alarm(timeout):
            return fn(*args, **(kwargs or {})), None
    except UserCodeTimeout as exc:
        return None, (exc, f"still running after {timeout:g} s: stopped (a loop that never "
                           f"ends?)", "timed_out")
    except SystemExit as exc:
        where, _ = _where(exc, name)
        return None, (exc, f"it called sys.exit({exc.code!r}){where}: a function under test "
                           f"must return, not end the program", "exits")
    except KeyboardInterrupt as exc:
        where, _ = _where(exc, name)
        return None, (exc, f"KeyboardInterrupt{where}: interrupted", "exits")
    except Exception as exc:  # the learner's code: any exception is a finding, not a crash
        where, frame = _where(exc, name)
        kind = "raises"
        if frame is None and isinstance(exc, TypeError):
            kind = "signature"
        elif frame is not None and frame != name:
            kind = "raises_in_helper"
        return None, (exc, f"{type(exc).__name__}: {exc}{where}", kind)
    finally:
        np.random.set_state(state)


# --------------------------------------------------------------------------- child process

#: the hard limit of a whole isolated run: ``factor * time limit + margin`` seconds
HARD_LIMIT_FACTOR, HARD_LIMIT_MARGIN = 3, 30


def in_child():
    return bool(os.environ.get("CHAINRULE_SANDBOX_STATUS"))


def child_done(status):
    """Called by the child at its very end: tells the parent the run finished."""
    path = os.environ.get("CHAINRULE_SANDBOX_STATUS")
    if path:
        with open(path, "w") as f:
            f.write(str(int(status)))


def run_isolated(argv, time_limit):
    """Run ``python -m chainrule *argv`` in a child; relay its output; return its status.

    A child that ends without reporting (``os._exit``, a crash) or runs past the hard limit
    is a finding (status 1) with a message, never a silent status 0.
    """
    hard = HARD_LIMIT_FACTOR * float(time_limit) + HARD_LIMIT_MARGIN
    fd, status_path = tempfile.mkstemp(prefix="chainrule-sandbox-")
    os.close(fd)
    os.unlink(status_path)
    env = dict(os.environ, CHAINRULE_SANDBOX_STATUS=status_path)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "chainrule", *argv], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=hard)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            sys.stdout.write(out)
            sys.stderr.write(err)
            print(f"the run was stopped after {hard:g} s (time limit {time_limit:g} s per call "
                  f"of your code): it never returned, probably a loop inside compiled code")
            return 1
        sys.stdout.write(out)
        sys.stderr.write(err)
        if not os.path.exists(status_path):
            print(f"your code ended the process before the report was complete (exit status "
                  f"{proc.returncode}: os._exit, a crash, or a signal)")
            return 1
        with open(status_path) as f:
            return int(f.read().strip() or 1)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(status_path)
