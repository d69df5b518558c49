"""The emulator's state on disk: one pickle of every moto backend in use, plus content-addressed blobs.

moto keeps everything in module-level `BackendDict`s (`BackendDict._instances` lists the ones in use). They
are pickled in one call, so objects shared between services (a CloudFormation stack's resources are the
very queue, function and bucket objects of their services) stay shared after a restore. What moto holds
that does not pickle is reduced to what rebuilds it:

- locks and re-entrant locks -> new, released locks (nobody holds them in a new process);
- threads -> None (the thread is gone; see `recovery` for what was running);
- a Step Functions execution that was running -> without its worker (its interpreter thread), so
  `recovery` starts it again;
- RSA private keys (KMS, CloudFormation's key pairs) -> their PKCS#8 PEM;
- `WeakValueDictionary` -> the same mapping, rebuilt (its values are pickled with their owners);
- S3's versioned key store (its `items()` shows the latest version only) -> every version list as it is;
- `defaultdict`s with a local factory (SSM's tags) -> a nested defaultdict of dicts again; subclasses of
  defaultdict whose `__init__` takes other arguments (SSM's parameters) -> rebuilt without calling it.

The reducers are a per-type table the C pickler consults (no Python call per object: a save of the sample
lake's state takes a fraction of a second); a type the table misses is saved by a slower pickler that asks
by isinstance. Large S3 objects (BLOB_MIN and over) are not in the pickle: their bytes are stored once under
`blobs/`, named by ETag and size (S3's own content address), so a save writes only the blobs it lacks.
The pickle is written to a temporary file and renamed over the previous one: a process killed while saving
leaves the previous snapshot whole (and a temporary file the next load removes). Blobs the snapshot on disk
does not name are removed after each save.
"""
from __future__ import annotations

import collections
import copyreg
import io
import logging
import os
import pickle
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)

SNAPSHOT_FILE = "state.pickle"
BLOBS_DIR = "blobs"
FORMAT = 1
BLOB_MIN = 64 * 1024
PICKLE_ATTEMPTS = 20  # other threads keep changing moto's dicts while it is pickled; a retry sees them settled

_LOCK_TYPES = (type(threading.Lock()), type(threading.RLock()))


class SnapshotError(Exception):
    """A snapshot could not be read (other moto version, damaged file): the message says which and why."""


@dataclass(frozen=True)
class SaveReport:
    path: Path
    size: int  # bytes of the pickle
    blobs_written: int
    blob_bytes_written: int
    seconds: float
    services: int


@dataclass(frozen=True)
class LoadReport:
    path: Path
    saved_at: str
    services: list[str]
    seconds: float


# --- rebuilding what does not pickle --------------------------------------------------------------------
def _new_lock(reentrant: bool) -> Any:
    return threading.RLock() if reentrant else threading.Lock()


def _nothing() -> None:
    return None


def _private_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    return load_pem_private_key(pem, password=None)


def _weak_values(items: dict) -> weakref.WeakValueDictionary:
    return weakref.WeakValueDictionary(items)


def _nested_dicts() -> collections.defaultdict:
    return collections.defaultdict(dict)


def _defaultdict_of_dicts(items: dict) -> collections.defaultdict:
    return collections.defaultdict(_nested_dicts, items)


def _defaultdict_subclass(cls: type, factory: Any, items: dict, attributes: dict) -> Any:
    obj = cls.__new__(cls)
    obj.default_factory = factory
    obj.update(items)
    obj.__dict__.update(attributes)
    return obj


def _versioned_store(cls: type, versions: dict, attributes: dict) -> Any:
    obj = cls.__new__(cls)
    for name, listed in versions.items():
        dict.__setitem__(obj, name, listed)
    obj.__dict__.update(attributes)
    return obj


def _restore_object(cls: type, state: dict) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


class _BlobRef(str):
    """The name of a blob: `_s3_key` reads its bytes from the snapshot being loaded."""


_loading = threading.local()  # .blobs_dir while a snapshot is being loaded


def _s3_key(cls: type, state: dict, value: Any) -> Any:
    if isinstance(value, _BlobRef):
        try:
            value = (_loading.blobs_dir / value).read_bytes()
        except OSError as exc:
            raise SnapshotError(f"blob {value} named by the snapshot is missing: {exc}") from None
    state["value"] = value
    obj = cls.__new__(cls)
    obj.__setstate__(state)
    return obj


def _private_key_pem(key: Any) -> Any:
    from cryptography.hazmat.primitives import serialization

    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return _private_key, (pem,)


def _subclasses(cls: type) -> list[type]:
    found, pending = [], [cls]
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(current.__subclasses__())
    return found


class _Reducers:
    """How each type that does not pickle as it is gets saved: a `copyreg`-style table the C pickler consults
    by exact type (no Python call for the other objects, which is what keeps a save fast)."""

    def __init__(self, blobs: "_BlobWriter"):
        from moto.s3.models import FakeKey
        from moto.s3.utils import _VersionedKeyStore
        from moto.stepfunctions.parser.backend.execution import Execution

        self.blobs = blobs
        # copyreg's own table first (compiled patterns and the like pickle through it)
        table: dict[type, Any] = dict(copyreg.dispatch_table)
        table.update({_LOCK_TYPES[0]: lambda _: (_new_lock, (False,)),
                      _LOCK_TYPES[1]: lambda _: (_new_lock, (True,)),
                      weakref.WeakValueDictionary: lambda d: (_weak_values, (dict(d.items()),)),
                      collections.defaultdict: self._defaultdict})
        table.update((kind, lambda _: (_nothing, ())) for kind in _subclasses(threading.Thread))
        table.update((kind, self._s3_key) for kind in _subclasses(FakeKey))
        table.update((kind, self._execution) for kind in _subclasses(Execution))
        table.update((kind, self._versioned_store) for kind in _subclasses(_VersionedKeyStore))
        table.update((kind, self._defaultdict_subclass) for kind in _subclasses(collections.defaultdict)
                     if kind is not collections.defaultdict)
        try:
            from cryptography.hazmat.bindings._rust import openssl as rust_openssl

            table[rust_openssl.rsa.RSAPrivateKey] = _private_key_pem
        except (ImportError, AttributeError):
            pass  # another cryptography layout: the fallback pickler handles keys
        self.table = table

    def override(self, obj: Any) -> Any:
        """The same, for the fallback pickler (by isinstance, for types the table does not know)."""
        kind = type(obj)
        reducer = self.table.get(kind)
        if reducer is not None:
            return reducer(obj)
        if isinstance(obj, threading.Thread):
            return _nothing, ()
        if kind.__module__.startswith("cryptography.") and hasattr(obj, "private_bytes"):
            return _private_key_pem(obj)
        return NotImplemented

    @staticmethod
    def _defaultdict(d: collections.defaultdict) -> Any:
        if getattr(d.default_factory, "__qualname__", "").endswith("<lambda>"):
            return _defaultdict_of_dicts, (dict(d),)
        return d.__reduce__()

    @staticmethod
    def _versioned_store(store: dict) -> Any:
        # Its items() and __setitem__ see the latest version only: save and restore every version list
        return _versioned_store, (type(store), {k: list(v) for k, v in dict.items(store)}, dict(vars(store)))

    @staticmethod
    def _defaultdict_subclass(d: collections.defaultdict) -> Any:
        # defaultdict's own reduce calls cls(factory), which a subclass's __init__ (SSM's) refuses
        return _defaultdict_subclass, (type(d), d.default_factory, dict(d), dict(vars(d)))

    def _s3_key(self, key: Any) -> Any:
        state = {k: v for k, v in key.__dict__.items() if k not in ("_value_buffer", "lock")}
        if key.size < BLOB_MIN:
            return _s3_key, (type(key), state, key.value)
        name = f"s3-{key.etag.strip(chr(34))}-{key.size}"
        return _s3_key, (type(key), state, _BlobRef(self.blobs.put(name, lambda: key.value)))

    @staticmethod
    def _execution(execution: Any) -> Any:
        state = dict(execution.__dict__)
        if str(getattr(state.get("exec_status"), "value", state.get("exec_status"))) == "RUNNING":
            state["exec_worker"] = None  # its interpreter thread is gone: recovery starts it again
        return _restore_object, (type(execution), state)


_fallback_reported: list[str] = []


def _dump(data: Any, blobs: "_BlobWriter") -> bytes:
    reducers = _Reducers(blobs)
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = reducers.table
    try:
        pickler.dump(data)
        return buffer.getvalue()
    except (TypeError, AttributeError, pickle.PicklingError) as exc:
        if not _fallback_reported:
            _fallback_reported.append(str(exc))
            LOG.warning("an object the reducers do not know (%s): snapshots are saved by the slower pickler", exc)

    class Thorough(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            return reducers.override(obj)

    buffer = io.BytesIO()
    Thorough(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(data)
    return buffer.getvalue()


class _BlobWriter:
    """Writes each blob once; `names` is what the snapshot being written refers to."""

    def __init__(self, blobs_dir: Path):
        self.dir = blobs_dir
        self.names: set[str] = set()
        self.written = 0
        self.written_bytes = 0

    def put(self, name: str, data: Any) -> str:
        self.names.add(name)
        path = self.dir / name
        if not path.exists():
            content = data()
            _write_atomically(path, content)
            self.written += 1
            self.written_bytes += len(content)
        return name


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(temporary, "wb") as out:
        out.write(content)
    # No fsync: the rename is atomic for a process that dies (kill -9), and what it wrote is in the
    # kernel's cache; surviving a power cut is not what an emulator on a laptop is for.
    os.replace(temporary, path)


# --- which backends --------------------------------------------------------------------------------------
def _backend_key(backend_dict: Any) -> tuple[str, str, str]:
    cls = backend_dict.backend
    return cls.__module__, cls.__qualname__, backend_dict.service_name


def _live_backend_dict(key: tuple[str, str, str]) -> Any:
    import importlib
    import sys

    from moto.core.base_backend import BackendDict

    module_name, qualname, service = key
    module = importlib.import_module(module_name)
    candidates = [module] + [m for n, m in list(sys.modules.items()) if n.startswith("moto.") and m is not module]
    for candidate in candidates:
        for value in list(vars(candidate).values()):
            if (isinstance(value, BackendDict) and value.service_name == service
                    and value.backend.__qualname__ == qualname and value.backend.__module__ == module_name):
                return value
    raise SnapshotError(f"moto has no backend {qualname} for service {service} any more ({module_name})")


def _in_use() -> dict[tuple[str, str, str], dict]:
    from moto.core.base_backend import BackendDict

    return {_backend_key(b): dict(b) for b in list(BackendDict._instances) if len(b)}


# --- save / load ------------------------------------------------------------------------------------------
def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def save(state_dir: Path) -> SaveReport:
    """Writes the state of every moto backend in use under `state_dir` (atomically)."""
    started = time.perf_counter()
    blobs = _BlobWriter(state_dir / BLOBS_DIR)
    payload = b""
    for attempt in range(1, PICKLE_ATTEMPTS + 1):
        backends = _in_use()
        try:
            payload = _dump({"format": FORMAT, "moto": _moto_version(),
                             "saved_at": datetime.now(timezone.utc).isoformat(), "backends": backends}, blobs)
        except RuntimeError as exc:  # "dictionary changed size during iteration": a request thread was busy
            if attempt == PICKLE_ATTEMPTS:
                raise
            LOG.debug("snapshot attempt %d raced a change (%s); again", attempt, exc)
            continue
        break
    path = state_dir / SNAPSHOT_FILE
    _write_atomically(path, payload)
    _remove_unnamed_blobs(blobs)
    return SaveReport(path, len(payload), blobs.written, blobs.written_bytes, time.perf_counter() - started,
                      len(backends))


def _remove_unnamed_blobs(blobs: _BlobWriter) -> None:
    if not blobs.dir.is_dir():
        return
    for path in blobs.dir.iterdir():
        if path.name not in blobs.names and not path.name.startswith("."):
            path.unlink(missing_ok=True)


def _remove_partial_writes(state_dir: Path) -> None:
    """Temporary files a killed save left behind (the rename never happened, so nothing refers to them)."""
    for folder in (state_dir, state_dir / BLOBS_DIR):
        if folder.is_dir():
            for path in folder.glob(".*.tmp"):
                path.unlink(missing_ok=True)


def exists(state_dir: Path) -> bool:
    return (state_dir / SNAPSHOT_FILE).is_file()


def load(state_dir: Path) -> LoadReport | None:
    """Puts the saved state into moto's backends (None when nothing was saved). Call it before the server
    answers requests and before the execution parts start."""
    from moto.core.base_backend import BackendDict

    path = state_dir / SNAPSHOT_FILE
    if not path.is_file():
        return None
    started = time.perf_counter()
    _remove_partial_writes(state_dir)
    _loading.blobs_dir = state_dir / BLOBS_DIR
    try:
        with open(path, "rb") as source:
            data = pickle.load(source)
    except SnapshotError:
        raise
    except Exception as exc:
        raise SnapshotError(f"{path} could not be read ({type(exc).__name__}: {exc}); `sdlf local reset` starts "
                            "the emulator empty") from None
    finally:
        _loading.blobs_dir = None
    if data.get("format") != FORMAT or data.get("moto") != _moto_version():
        raise SnapshotError(f"{path} was saved by moto {data.get('moto')} (format {data.get('format')}), this is "
                            f"moto {_moto_version()}: `sdlf local reset` starts the emulator empty")
    services = []
    for key, accounts in data["backends"].items():
        live = _live_backend_dict(key)
        dict.clear(live)
        dict.update(live, accounts)
        if live not in BackendDict._instances:
            BackendDict._instances.append(live)
        services.append(key[2])
    return LoadReport(path, data["saved_at"], sorted(set(services)), time.perf_counter() - started)


def saved_files(state_dir: Path) -> list[Path]:
    """The files a snapshot consists of (what `sdlf local reset` removes)."""
    found = [state_dir / SNAPSHOT_FILE] if (state_dir / SNAPSHOT_FILE).exists() else []
    blobs = state_dir / BLOBS_DIR
    if blobs.is_dir():
        found.extend(sorted(blobs.iterdir()))
    return found
