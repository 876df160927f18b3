"""Saving and loading a :class:`~chainrule.Network`: an ``.npz`` with JSON metadata, no pickle.

File layout (a NumPy ``.npz``, i.e. a zip of ``.npy`` members)
--------------------------------------------------------------
``__metadata__``
    UTF-8 JSON as a ``uint8`` array: ``format`` (``"chainrule-model"``),
    ``format_version``, ``library_version``, ``config`` (:meth:`Network.get_config`),
    ``history`` (``history_``) and ``arrays``: for every entry of
    :meth:`Network.get_state` its ``name``, zip ``member``, ``dtype`` and ``shape``.
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
import os
import tempfile
import warnings

import numpy as np

from .errors import ChainruleError, ModelFileError

FORMAT = "chainrule-model"
FORMAT_VERSION = 1
_META = "__metadata__"
_DIGEST = "__sha256__"

__all__ = ["save", "read", "restore", "FORMAT", "FORMAT_VERSION"]


def _library_version():
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


def save(net, path):
    """Save ``net`` (configuration, every state array, history) to ``path``, atomically.

    Parameters
    ----------
    net : Network
    path : str or os.PathLike
        The file to write (used as given: no ``.npz`` is appended). An existing file is
        replaced only once the new one is complete on disk.

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
    path = os.path.abspath(os.fspath(path))
    names, arrays = _state_arrays(net.get_state())
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "library_version": _library_version(),
        "config": _jsonable(net.get_config(), "the config"),
        "history": _jsonable(getattr(net, "history_", {}), "history_"),
        "arrays": [{"name": n, "member": f"a{i}", "dtype": a.dtype.str, "shape": list(a.shape)}
                   for i, (n, a) in enumerate(zip(names, arrays))],
    }
    meta_bytes = json.dumps(meta, sort_keys=True).encode("utf-8")
    members = {_META: np.frombuffer(meta_bytes, dtype=np.uint8),
               _DIGEST: np.frombuffer(_digest(meta_bytes, names, arrays).encode(), np.uint8)}
    members.update({f"a{i}": a for i, a in enumerate(arrays)})

    directory, base = os.path.split(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ModelFileError(f"cannot write {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **members)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
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


def _read(path):
    """Every member of the ``.npz`` at ``path``, fully read into memory, without pickle."""
    if not os.path.exists(path):
        raise ModelFileError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError, OSError, ...
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
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ModelFileError(
            f"{path} has file format version {version!r} (written by chainrule "
            f"{meta.get('library_version', '?')}); this chainrule {_library_version()} reads "
            f"version {FORMAT_VERSION}" + (" — upgrade chainrule to load it" if newer else ""))
    return meta, meta_bytes


def _arrays(path, meta, members):
    entries = meta.get("arrays")
    fields = {"name", "member", "dtype", "shape"}
    if not isinstance(entries, list) or not all(isinstance(e, dict) and fields <= set(e)
                                                for e in entries):
        raise ModelFileError(f"{path}: the metadata's array table is malformed")
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


def read(path):
    """The configuration, state arrays and history of a file written by :func:`save`; every
    check of the file (format, version, checksum) passes before anything is returned.

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
    path = os.fspath(path)
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
    return dict(config), dict(zip(names, arrays)), meta.get("history")


def restore(cls, path, backend=None):
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

    Raises
    ------
    ModelFileError
        As :func:`read`, or the content does not fit its configuration.
    """
    path = os.fspath(path)
    config, state, history = read(path)
    if backend is not None:
        config["backend"] = backend
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
        if history:
            net.history_ = {k: list(v) if isinstance(v, list) else v for k, v in history.items()}
    except (ChainruleError, TypeError, KeyError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"{path}: the saved configuration and state do not make a valid "
                             f"network: {exc}") from exc
    return net
