"""Saving and loading a :class:`~chainrule.Network`: an ``.npz`` with JSON metadata, no pickle.

File layout (a NumPy ``.npz``, i.e. a zip of ``.npy`` members)
--------------------------------------------------------------
``__metadata__``
    UTF-8 JSON as a ``uint8`` array: ``format`` (``"chainrule-model"``),
    ``format_version``, ``library_version``, ``config`` (:meth:`Network.get_config`),
    ``history`` (``history_``) and ``arrays``: for every entry of
    :meth:`Network.get_state` its ``name``, zip ``member``, ``dtype`` and ``shape``;
    optionally ``extra``, JSON that a wrapper of the network keeps beside it (the
    scikit-learn estimators' parameters and fitted attributes).
``a0, a1, ...``
    The state arrays (parameters ``W1, b1, ...`` and whatever else ``get_state`` holds,
    e.g. optimiser state ``opt/...``), stored generically, one member each.
``__sha256__``
    The SHA-256 digest (hex, as ``uint8``) over the metadata bytes and, for each array in
    order, its name, dtype, shape and C-order bytes.

Guarantees
----------
- Loading never unpickles (``np.load(..., allow_pickle=False)``), so a file cannot run code.
- Writes are atomic: a temporary file in the same directory is written, flushed and
  fsync'ed, then ``os.replace``'d over the target, and the directory is fsync'ed. A crash
  at any moment leaves either the previous file or the new one, never a mixture. (A crash
  may leave a ``.<name>.*.tmp`` file behind; it is never read.)
- A truncated, corrupted, tampered, foreign or wrong-version file raises
  :class:`~chainrule.errors.ModelFileError` and returns nothing: the network is built and
  checked completely before it is handed back.

The checksum detects accidents (bit flips, truncation, edits that forget to update it); it
is not a signature and does not authenticate who wrote the file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import stat
import tempfile
import warnings
import zipfile
import zlib

import numpy as np

from . import _validate as check
from ._state_checks import validate_history, validate_state
from .errors import ChainruleError, InputError, ModelFileError

FORMAT = "chainrule-model"
FORMAT_VERSION = 1
_META = "__metadata__"
_DIGEST = "__sha256__"

__all__ = ["save", "read", "restore", "check_save_path", "write_atomically", "library_version",
           "FORMAT", "FORMAT_VERSION"]


def library_version():
    """chainrule's version (the package's ``__version__``)."""
    from . import __version__
    return __version__


def _jsonable(value, where):
    """``value`` with NumPy scalars and arrays turned into plain Python (for JSON)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}[{k!r}]") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, where) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ChainruleError(f"cannot save {where}: {type(value).__name__} is not a number, string, "
                         f"list or dict")


def _digest(meta_bytes, names, arrays):
    h = hashlib.sha256()
    h.update(len(meta_bytes).to_bytes(8, "little"))
    h.update(meta_bytes)
    for name, a in zip(names, arrays):
        header = json.dumps([name, a.dtype.str, list(a.shape)]).encode()
        h.update(len(header).to_bytes(8, "little"))
        h.update(header)
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _state_arrays(state):
    names, arrays = [], []
    for name, value in state.items():
        a = np.asarray(value)
        if a.dtype.kind not in "fiub" or a.dtype.hasobject:
            raise ChainruleError(f"cannot save state entry {name!r}: dtype {a.dtype} is not "
                                 f"numeric (the file format stores numbers only, never pickles)")
        names.append(str(name))
        arrays.append(np.ascontiguousarray(a))
    return names, arrays


def _fsync_dir(directory):
    """Make the rename durable. Best effort: the new file is already in place, and some file
    systems refuse to fsync a directory (EINVAL); Windows cannot open one."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _fspath(path, what):
    try:
        return os.fspath(path)
    except TypeError:
        raise InputError(f"{what} must be a file path (str or os.PathLike), got "
                         f"{type(path).__name__} {path!r:.60}") from None


def _write_target(path):
    """``(path, target, stat or None)``: the file to replace, symlinks followed.

    Only a regular file or a new name in an existing directory is written: a directory, a
    FIFO, a device or a socket is refused. A symlink is kept and its target (at the end
    of the chain) written, as ``open(path, "w")`` would.
    """
    given = _fspath(path, "path")
    path = os.path.abspath(given)
    if isinstance(given, str) and given.endswith(("/",) + ((os.sep, os.altsep) if os.altsep
                                                            else (os.sep,))) \
            and not os.path.isdir(path):
        raise ModelFileError(f"cannot write {given}: a path that ends with a slash names a "
                             f"directory; give the file name without it ({path})")
    target = os.path.realpath(path)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        directory = os.path.dirname(target)
        if not os.path.isdir(directory):
            raise ModelFileError(f"cannot write {path}: the directory {directory} does not "
                                 f"exist") from None
        return path, target, None
    except OSError as exc:  # a symlink loop, a permission error on the way
        raise ModelFileError(f"cannot write {path}: {exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise ModelFileError(f"cannot write {path}: it is a directory; give a file name, e.g. "
                             f"{os.path.join(path, 'model.npz')}")
    if not stat.S_ISREG(st.st_mode):
        kind = ("FIFO" if stat.S_ISFIFO(st.st_mode) else "socket" if stat.S_ISSOCK(st.st_mode)
                else "device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "special file")
        raise ModelFileError(f"cannot write {path}: it is a {kind}, not a regular file; "
                             f"chainrule replaces only regular files (or writes a new path)")
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        raise ModelFileError(f"cannot write {path}: the file belongs to another user (uid "
                             f"{st.st_uid}); chainrule replaces only your own files (the "
                             f"replacement would take it over): remove it or choose another "
                             f"path")
    if not st.st_mode & stat.S_IWUSR:
        raise ModelFileError(f"cannot write {path}: the file is write-protected (mode "
                             f"{stat.S_IMODE(st.st_mode):04o}); make it writable (chmod u+w) "
                             f"or choose another path")
    return path, target, st


def check_save_path(path):
    """``path`` as an absolute path if :func:`save` may write it; raises otherwise.

    The rule of :func:`save`, for callers that want to know before doing work (``fit``'s
    checkpoint, the command line's ``--checkpoint`` and ``--plot``): a regular file or a new
    name in an existing directory, symlinks followed; not a directory, FIFO, device or
    socket.

    Raises
    ------
    InputError
        ``path`` is not a str or path-like.
    ModelFileError
        It cannot or must not be written (the message says why).
    """
    path, target, _ = _write_target(path)
    if not os.access(os.path.dirname(target), os.W_OK):
        raise ModelFileError(f"cannot write {path}: the directory {os.path.dirname(target)} is "
                             f"not writable")
    return path


def save(net, path, extra=None):
    """Save ``net`` (configuration, every state array, history) to ``path``, atomically.

    Parameters
    ----------
    net : Network
    path : str or os.PathLike
        The file to write (used as given: no ``.npz`` is appended). An existing file is
        replaced only once the new one is complete on disk; only a regular file or a new
        path is written (a directory, FIFO or device is refused). A symlink is kept: its
        target is written.
    extra : dict, optional
        JSON-able data kept in the metadata (under the checksum); :func:`restore` with
        ``extra=True`` hands it back.

    Raises
    ------
    InputError
        The model holds something :func:`load` would refuse (NaN or inf parameters,
        optimiser moments or early-stopping copies, impossible counters...): nothing is
        written.
    ModelFileError
        The path cannot be written (missing directory, not a regular file, disk full...):
        the previous file, if any, is intact.

    Returns
    -------
    path : str

    Examples
    --------
    >>> import os, tempfile
    >>> from chainrule import Network, load, save
    >>> net = Network([2, 3, 1], backend="numpy")
    >>> path = save(net, os.path.join(tempfile.mkdtemp(), "net.npz"))
    >>> bool((load(path).parameters["W1"] == net.parameters["W1"]).all())
    True
    """
    path, target, existing = _write_target(path)
    state = net.get_state()
    names, arrays = _state_arrays(state)
    try:  # what load would refuse is never written
        validate_state(state, net.layer_dims, net.dtype)
        validate_history(getattr(net, "history_", None))
    except InputError as exc:
        raise InputError(f"refusing to save to {path}: {exc}; the file was not written"
                         + ("" if existing is None else " (the previous file is intact)")) \
            from exc
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": library_version(),
        "config": _jsonable(net.get_config(), "the config"),
        "history": _jsonable(getattr(net, "history_", {}), "history_"),
        "arrays": [{"name": n, "member": f"a{i}", "dtype": a.dtype.str, "shape": list(a.shape)}
                   for i, (n, a) in enumerate(zip(names, arrays))],
    }
    if extra is not None:
        meta["extra"] = _jsonable(extra, "extra")
    meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    members = {_META: np.frombuffer(meta_bytes, dtype=np.uint8),
               _DIGEST: np.frombuffer(_digest(meta_bytes, names, arrays).encode(), np.uint8)}
    members.update({f"a{i}": a for i, a in enumerate(arrays)})

    return _replace(path, target, existing, lambda f: np.savez(f, **members))


def write_atomically(path, write):
    """Write the file ``path`` as :func:`save` does: ``write(f)`` fills a temporary file (binary,
    in the same directory), which is fsync'ed and then ``os.replace``'d over ``path``; on any
    error the temporary file is removed and ``path`` is untouched. Returns the absolute path.
    The exporters (``Network.to_onnx``) use it."""
    path, target, existing = _write_target(path)
    return _replace(path, target, existing, write)


def _replace(path, target, existing, write):
    """The atomic write behind :func:`save` and :func:`write_atomically` (see the module's
    guarantees); ``existing``: the target's stat, whose permissions the new file keeps."""
    directory, base = os.path.split(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ModelFileError(f"cannot write {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            if existing is not None and hasattr(os, "fchmod"):  # keep the file's permissions
                os.fchmod(f.fileno(), stat.S_IMODE(existing.st_mode))
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as exc:  # also KeyboardInterrupt: never leave the temporary file
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, ModelFileError):
            raise ModelFileError(f"cannot write {path}: {exc}") from exc
        raise
    _fsync_dir(directory)
    return path


def _read_member(z, info):
    """One ``.npy`` member, its declared size checked against the bytes it holds first."""
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f".npy format version {version} is not one numpy.savez writes")
        if dtype.hasobject:
            raise ValueError(f"member {info.filename} holds Python objects (a pickle), which "
                             f"are never loaded")
        nbytes = math.prod(shape) * dtype.itemsize
        held = info.file_size - f.tell()
        if nbytes != held:
            raise ValueError(f"member {info.filename} declares shape {shape} of {dtype} "
                             f"({nbytes} bytes) but holds {held} bytes")
        buf = bytearray(nbytes)
        if f.readinto(buf) != nbytes:
            raise EOFError(f"member {info.filename} ends early")
    a = np.frombuffer(buf, dtype=dtype)
    return a.reshape(shape[::-1]).T if fortran else a.reshape(shape)


def _check_readable(path, stat_of, what):
    """The ``stat`` of ``path`` if it is a regular file; ``ModelFileError`` naming what it is
    otherwise (missing, a directory, a FIFO, a device, a socket)."""
    try:
        st = stat_of(path)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except NotADirectoryError:
        raise ModelFileError(f"{path}: no such file (a part of the path is a file, not a "
                             f"directory: a trailing slash?)") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise ModelFileError(f"{path} is a directory, not a chainrule model file")
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "not a regular file")
        raise ModelFileError(f"{path} is {kind}, not a chainrule model file (only regular "
                             f"files are read)")
    return st


def _read(path):
    """Every member of the ``.npz`` at ``path``, fully read into memory, without pickle.

    Sizes are checked before memory is reserved: the members' uncompressed sizes (as the
    zip directory declares them) must fit in the file (``numpy.savez`` stores, never
    compresses), and each member's ``.npy`` header must declare exactly the bytes it holds.
    """
    # The file type is checked before the file is opened for reading (a FIFO would block,
    # /dev/zero fill the memory), and again on the opened file (O_NONBLOCK: opening a FIFO
    # does not wait for a writer), so that a path swapped in between is refused too.
    _check_readable(path, os.stat, "stat")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot open it: {exc.strerror or exc}") from exc
    try:
        size = _check_readable(path, lambda _: os.fstat(fd), "fstat").st_size
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    try:
        with f, zipfile.ZipFile(f) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            if len(set(names)) != len(names) or not all(n.endswith(".npy") for n in names):
                raise ModelFileError(f"{path} is not a chainrule model file: its members "
                                     f"{sorted(names)[:8]} are not distinct .npy arrays")
            declared = sum(i.file_size for i in infos)
            if declared > size:
                raise ModelFileError(
                    f"{path} is not a file chainrule wrote: its members declare {declared} "
                    f"bytes but the file has {size} (refused before reading)")
            return {i.filename[:-len(".npy")]: _read_member(z, i) for i in infos}
    except ModelFileError:
        raise
    # NotImplementedError here is zipfile's for a member with a compression it cannot read
    # (a foreign or tampered file), caught like the other read errors: not an unfinished part.
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, NotImplementedError,
            RuntimeError, zlib.error, OverflowError, KeyError, SyntaxError, TypeError) as exc:
        raise ModelFileError(f"{path} is not a readable chainrule model file: it is truncated or "
                             f"corrupted ({type(exc).__name__}: {exc})") from exc


def _metadata(path, members):
    if _META not in members or _DIGEST not in members:
        raise ModelFileError(f"{path} is an .npz but not a chainrule model file (no metadata)")
    raw = members[_META]
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{path}: the metadata member is malformed")
    meta_bytes = raw.tobytes()
    try:
        meta = json.loads(meta_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path}: the metadata is not valid JSON ({exc}); the file is "
                             f"corrupted") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a chainrule model file (format "
                             f"{meta.get('format') if isinstance(meta, dict) else None!r})")
    version = meta.get("format_version")
    if isinstance(version, bool) or version != FORMAT_VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and \
            version > FORMAT_VERSION
        raise ModelFileError(
            f"{path} has file format version {version!r} (written by chainrule "
            f"{meta.get('library_version', '?')}); this chainrule {library_version()} reads "
            f"version {FORMAT_VERSION}" + (" — upgrade chainrule to load it" if newer else ""))
    return meta, meta_bytes


def _arrays(path, meta, members):
    entries = meta.get("arrays")
    fields = {"name", "member", "dtype", "shape"}
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and fields <= set(e) and isinstance(e["name"], str)
            and isinstance(e["member"], str) and isinstance(e["dtype"], str)
            and isinstance(e["shape"], list)
            and all(type(n) is int and n >= 0 for n in e["shape"]) for e in entries):
        raise ModelFileError(f"{path}: the metadata's array table is malformed (expected a list "
                             f"of {{name, member, dtype, shape}} with strings and a list of sizes)")
    for field in ("name", "member"):
        values = [e[field] for e in entries]
        if len(set(values)) != len(values):
            raise ModelFileError(f"{path}: the metadata's array table repeats a {field}")
    expected = {e["member"] for e in entries} | {_META, _DIGEST}
    if set(members) != expected:
        missing = sorted(expected - set(members))
        extra = sorted(set(members) - expected)
        raise ModelFileError(f"{path}: the members do not match the metadata: missing {missing}, "
                             f"unexpected {extra}")
    names, arrays = [], []
    for e in entries:
        a = members[e["member"]]
        if a.dtype.str != e["dtype"] or list(a.shape) != e["shape"]:
            raise ModelFileError(f"{path}: state entry {e['name']!r} has dtype {a.dtype.str} and "
                                 f"shape {a.shape}, but the metadata says {e['dtype']} and "
                                 f"{tuple(e['shape'])}")
        names.append(e["name"])
        arrays.append(a)
    return names, arrays


def read(path, extra=False):
    """The configuration, state arrays and history of a file written by :func:`save`; every
    check of the file (format, version, checksum) passes before anything is returned.
    ``extra=True``: also the ``extra`` that :func:`save` was given (None if none), fourth.

    Returns
    -------
    config : dict
    state : dict of ndarray
    history : dict or None

    Raises
    ------
    ModelFileError
        The file is missing, truncated, corrupted, tampered with (checksum mismatch), not a
        chainrule model, or of another format version.
    """
    path = _fspath(path, "path")
    members = _read(path)
    meta, meta_bytes = _metadata(path, members)
    names, arrays = _arrays(path, meta, members)
    digest = members[_DIGEST]
    stored = digest.tobytes().decode("ascii", "replace") if digest.dtype == np.uint8 else ""
    if not hmac.compare_digest(stored, _digest(meta_bytes, names, arrays)):
        raise ModelFileError(f"{path}: checksum mismatch — the file was corrupted or modified "
                             f"after it was saved")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise ModelFileError(f"{path}: the metadata has no configuration")
    out = dict(config), dict(zip(names, arrays)), meta.get("history")
    return out + (meta.get("extra"),) if extra else out


def restore(cls, path, backend=None, extra=False):
    """A ``cls`` (:class:`~chainrule.Network`) built from :func:`read`'s content; this is
    ``Network.load`` and ``chainrule.load``. The network is built and checked completely
    before it is handed back.

    Parameters
    ----------
    cls : type
        With ``from_config``, ``set_state`` and ``history_`` (io does not import the model).
    path : str or os.PathLike
    backend : str, optional
        Override the saved backend request (``"auto"``, ``"numpy"``, ...). By default the
        saved one is used; if it is not available here, ``"auto"`` is used with a warning.
    extra : bool
        Return ``(network, extra)``, ``extra`` as :func:`save` was given it (or None).

    Raises
    ------
    ModelFileError
        As :func:`read`, or the content does not fit its configuration.
    """
    path = _fspath(path, "path")
    if backend is not None:  # the argument's fault, not the file's
        try:
            backend = check.backend(backend)
        except InputError as exc:
            raise InputError(f"load(backend={backend!r}): {exc}") from None
    config, state, history, kept = read(path, extra=True)
    if backend is not None:
        config["backend"] = backend
    try:  # sizes and values first: nothing is allocated for a network the file cannot fill
        state = validate_state(state, config.get("layer_dims"), config.get("dtype", "float64"))
        history = validate_history(history)
    except ChainruleError as exc:
        raise ModelFileError(f"{path}: the saved configuration and state do not make a valid "
                             f"network: {exc}") from exc
    try:
        try:
            net = cls.from_config(config)
        except ImportError as exc:
            if backend is not None:
                raise
            warnings.warn(f"{path} was saved with backend {config.get('backend')!r}, which is "
                          f"not available here ({exc}); using 'auto'", RuntimeWarning,
                          stacklevel=2)
            net = cls.from_config({**config, "backend": "auto"})
        net.set_state(state)
        net.history_ = history
    except (ChainruleError, TypeError, KeyError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: the saved configuration and state do not make a valid "
                             f"network: {exc}") from exc
    return (net, kept) if extra else net
