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
#: the largest time limit accepted (about 11.6 days): larger ones overflow the timers
MAX_TIME_LIMIT = 1e6


def time_limit(value, what="timeout"):
    """``value`` as a time limit in seconds: ``None`` (no limit) or a finite number in
    ``(0, MAX_TIME_LIMIT]``; anything else raises ``InputError``."""
    from ..errors import InputError

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not 0 < value <= MAX_TIME_LIMIT:  # NaN and inf fail too
        raise InputError(f"{what} must be a number of seconds in (0, {MAX_TIME_LIMIT:g}] or "
                         f"None (no limit), got {value!r}")
    return float(value)


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
        try:  # the handler is restored whatever happens, setting the timer included
            signal.setitimer(signal.ITIMER_REAL, timeout)
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
    me = os.getpid()
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
        if os.getpid() != me:  # the code forked and this is the copy: it must not go on
            os._exit(0)        # to run (and report) the rest of the diagnosis
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
            f.write(str(status if status == INTERNAL else int(status)))


#: what a child reports when chainrule's own code failed (not the learner's)
INTERNAL = "internal"


def watch_forks():
    """In the child: note every process the learner's code forks (``os.fork``, also before
    a ``setsid()`` that leaves the process group), so that the parent can stop them."""
    path = os.environ.get("CHAINRULE_SANDBOX_STATUS")
    if not path or not hasattr(os, "register_at_fork"):
        return

    def note():
        with contextlib.suppress(OSError), open(path + ".pids", "a") as f:
            f.write(f"{os.getpid()}\n")

    os.register_at_fork(after_in_child=note)


def _stop_forked(status_path, proc):
    """Kill what the child left running: its process group, and the processes it noted
    (:func:`watch_forks`) that still carry this run's marker in their environment (so that
    a reused process id is never hit)."""
    with contextlib.suppress(ProcessLookupError, PermissionError, OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    marker = f"CHAINRULE_SANDBOX_STATUS={status_path}".encode()
    try:
        with open(status_path + ".pids") as f:
            pids = {int(line) for line in f if line.strip().isdigit()}
    except OSError:
        pids = set()
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if marker not in f.read().split(b"\0"):
                    continue
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            continue
    with contextlib.suppress(FileNotFoundError):
        os.unlink(status_path + ".pids")


def run_isolated(argv, time_limit):
    """Run ``python -m chainrule *argv`` in a child; relay its output; return its status.

    A child that ends without reporting (``os._exit``, a crash) or runs past the hard limit
    is a finding (status 1) with a message, never a silent status 0. Its output goes to
    files, not pipes, so that processes it forked (and that keep the output open) cannot
    hold the parent past the limit; its process group and the processes it forked are
    killed at the end.
    """
    hard = HARD_LIMIT_FACTOR * float(time_limit) + HARD_LIMIT_MARGIN
    fd, status_path = tempfile.mkstemp(prefix="chainrule-sandbox-")
    os.close(fd)
    os.unlink(status_path)
    env = dict(os.environ, CHAINRULE_SANDBOX_STATUS=status_path)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        try:
            proc = subprocess.Popen([sys.executable, "-m", "chainrule", *argv], env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    text=True, start_new_session=True)
            try:
                proc.wait(timeout=hard)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            _stop_forked(status_path, proc)
            proc.wait()
            for stream, to in ((out, sys.stdout), (err, sys.stderr)):
                stream.seek(0)
                to.write(stream.read())
            if timed_out:
                print(f"the run was stopped after {hard:g} s (time limit {time_limit:g} s per "
                      f"call of your code): it never returned, probably a loop inside "
                      f"compiled code")
                return 1
            if not os.path.exists(status_path):
                print(f"your code ended the process before the report was complete (exit "
                      f"status {proc.returncode}: os._exit, a crash, or a signal)")
                return 1
            with open(status_path) as f:
                text = f.read().strip()
            if text == INTERNAL:
                print("chainrule's own code failed while checking yours (the traceback "
                      "above): a bug in chainrule, not in your code; please report it")
                return 1
            return int(text or 1)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(status_path)
