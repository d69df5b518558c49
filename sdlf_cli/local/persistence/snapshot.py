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
- `defaultdict`s with a local factory (SSM's tags) -> a nested defaultdict of dicts again.

Large values are not in the pickle: an S3 object's bytes are stored once under `blobs/` named by its ETag
and size (S3's own content address), any other bytes value over BLOB_MIN (Lambda code and layer zips) by
its SHA-256. A snapshot writes only the blobs it lacks, so saving again after a small change is cheap.
The pickle is written to a temporary file, flushed to disk and renamed over the previous one: a crash
while saving leaves the previous snapshot whole. Blobs no snapshot names any more are removed after a save.
"""
from __future__ import annotations

import collections
import hashlib
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


def _restore_object(cls: type, state: dict) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    return obj


class _BlobRef(str):
    """The name of a blob whose bytes the unpickler reads in place of the name."""


def _s3_key(cls: type, state: dict, value: Any) -> Any:
    state["value"] = value
    obj = cls.__new__(cls)
    obj.__setstate__(state)
    return obj


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, blobs: "_BlobWriter"):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.blobs = blobs
        from moto.s3.models import FakeKey
        from moto.stepfunctions.parser.backend.execution import Execution

        self._fake_key = FakeKey
        self._execution = Execution

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is bytes and len(obj) >= BLOB_MIN:
            return self.blobs.put_bytes(obj)
        if type(obj) is _BlobRef:
            return str(obj)
        return None

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind in _LOCK_TYPES:
            return _new_lock, (kind is _LOCK_TYPES[1],)
        if isinstance(obj, threading.Thread):
            return _nothing, ()
        if isinstance(obj, self._fake_key):
            return self._reduce_s3_key(obj)
        if isinstance(obj, self._execution):
            return self._reduce_execution(obj)
        if kind is weakref.WeakValueDictionary:
            return _weak_values, (dict(obj.items()),)
        if kind is collections.defaultdict and getattr(obj.default_factory, "__qualname__", "").endswith("<lambda>"):
            return _defaultdict_of_dicts, (dict(obj),)
        if kind.__module__.startswith("cryptography.") and hasattr(obj, "private_bytes"):
            from cryptography.hazmat.primitives import serialization

            pem = obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            return _private_key, (pem,)
        return NotImplemented

    def _reduce_s3_key(self, key: Any) -> Any:
        state = {k: v for k, v in key.__dict__.items() if k not in ("_value_buffer", "lock")}
        if key.size < BLOB_MIN:
            return _s3_key, (type(key), state, key.value)
        name = f"s3-{key.etag.strip(chr(34))}-{key.size}"
        return _s3_key, (type(key), state, _BlobRef(self.blobs.put(name, lambda: key.value)))

    def _reduce_execution(self, execution: Any) -> Any:
        state = dict(execution.__dict__)
        if str(getattr(state.get("exec_status"), "value", state.get("exec_status"))) == "RUNNING":
            state["exec_worker"] = None  # its interpreter thread is gone: recovery starts it again
        return _restore_object, (type(execution), state)


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedReader, blobs_dir: Path):
        super().__init__(file)
        self.blobs_dir = blobs_dir

    def persistent_load(self, pid: Any) -> bytes:
        try:
            return (self.blobs_dir / pid).read_bytes()
        except OSError as exc:
            raise SnapshotError(f"blob {pid} named by the snapshot is missing from {self.blobs_dir}: {exc}") from None


class _BlobWriter:
    """Writes each blob once; `names` is what the snapshot being written refers to."""

    def __init__(self, blobs_dir: Path):
        self.dir = blobs_dir
        self.names: set[str] = set()
        self.written = 0
        self.written_bytes = 0

    def put_bytes(self, data: bytes) -> str:
        return self.put(f"sha256-{hashlib.sha256(data).hexdigest()}", lambda: data)

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
        out.flush()
        os.fsync(out.fileno())
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
    payload = None
    for attempt in range(1, PICKLE_ATTEMPTS + 1):
        buffer = io.BytesIO()
        backends = _in_use()
        try:
            _Pickler(buffer, blobs).dump({"format": FORMAT, "moto": _moto_version(),
                                          "saved_at": datetime.now(timezone.utc).isoformat(),
                                          "backends": backends})
        except RuntimeError as exc:  # "dictionary changed size during iteration": a request thread was busy
            if attempt == PICKLE_ATTEMPTS:
                raise
            LOG.debug("snapshot attempt %d raced a change (%s); again", attempt, exc)
            continue
        payload = buffer.getvalue()
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
    try:
        with open(path, "rb") as source:
            data = _Unpickler(source, state_dir / BLOBS_DIR).load()
    except SnapshotError:
        raise
    except Exception as exc:
        raise SnapshotError(f"{path} could not be read ({type(exc).__name__}: {exc}); `sdlf local reset` starts "
                            "the emulator empty") from None
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
