"""A class-data-sharing archive (JDK dynamic AppCDS) for the emulator's Spark job runs.

Most of a Spark driver JVM's start is loading and verifying the classes of Spark's jars. A JVM started with
`-XX:ArchiveClassesAtExit=<file>` writes the classes it loaded to that file when it exits; a JVM started with
`-XX:SharedArchiveFile=<file>` maps them instead of loading them again (a small job: 13.5 -> 8.9 s of CPU).

The archive lives in the project's cache (`sdlf_cli.cache_dir`), named after what makes it valid: the java
binary spark-class runs, pyspark's version, Spark's jars folder and its listing. The first Spark run that finds
none makes it, holding a lock file (created with O_EXCL; one older than STALE_SECONDS is left by a maker that
died and is taken over); runs at the same time run without it. The JVM writes it to a file of the run's own,
moved into place (named with its size) only when the run succeeded, so a failed or killed run leaves nothing
behind. A JVM that cannot use an archive (another JVM's, another class path) falls back to loading the classes:
only the sharing is lost. A shorter file than was made would crash it instead, so such a file is removed, not used.

The options reach the driver JVM through PYSPARK_SUBMIT_ARGS (pyspark passes it to spark-submit), merged
into the `--driver-java-options` already there. `SDLF_SPARK_CLASS_ARCHIVE=off` turns it off.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shlex
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

SWITCH_VARIABLE = "SDLF_SPARK_CLASS_ARCHIVE"
SUBMIT_ARGS_VARIABLE = "PYSPARK_SUBMIT_ARGS"
FOLDER_NAME = "spark-class-archive"
STALE_SECONDS = 15 * 60  # a dump takes seconds; a lock this old was left by a run that never finished
# The JVM's own CDS messages (at dump: classes it skips, e.g. of signed jars or old class versions; at use: why
# an archive does not fit) are warnings on stdout, which is the job's output log: the sharing is not the job's.
# (-Xlog:cds*: every message with the cds tag, e.g. [cds] at dump, [cds,dynamic] for an archive that does not fit.)
QUIET = "-Xlog:cds*=off"
SUFFIX = ".jsa"
MAKING = ".making"
_DRIVER_OPTIONS = "--driver-java-options"
_DRIVER_OPTIONS_CONF = "spark.driver.extraJavaOptions="


# --- what makes an archive valid -----------------------------------------------------------------------------
def java_binary(env: Mapping[str, str]) -> Path | None:
    """The java spark-class runs: $JAVA_HOME/bin/java, else `java` on PATH (resolved, not started)."""
    home = env.get("JAVA_HOME")
    found = str(Path(home) / "bin" / "java") if home else shutil.which("java", path=env.get("PATH"))
    if not found or not os.path.isfile(found):
        return None
    return Path(os.path.realpath(found))


def spark_home(env: Mapping[str, str]) -> Path | None:
    """$SPARK_HOME, else the installed pyspark package (what pyspark's find_spark_home picks)."""
    if env.get("SPARK_HOME"):
        return Path(env["SPARK_HOME"])
    spec = importlib.util.find_spec("pyspark")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


def pyspark_version() -> str | None:
    try:
        return importlib.metadata.version("pyspark")
    except importlib.metadata.PackageNotFoundError:
        return None


def archive_key(java: Path, version: str, jars: Path) -> str:
    """Names the archive made by and for this java, pyspark version and jars folder; a change of any of them (the
    JVM also checks each class path entry's size and time) gives another name. OSError when one is unreadable."""
    stat = java.stat()
    jars = Path(os.path.realpath(jars))
    listing = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in os.scandir(jars) if e.is_file())
    seed = json.dumps([str(java), stat.st_size, stat.st_mtime_ns, version, str(jars), listing])
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]


def current_key(env: Mapping[str, str]) -> str | None:
    """The key of the archive a Spark JVM started with `env` can use, or None when java or Spark is not found."""
    java, home, version = java_binary(env), spark_home(env), pyspark_version()
    if java is None or home is None or version is None:
        return None
    try:
        return archive_key(java, version, home / "jars")
    except OSError:
        return None


# --- PYSPARK_SUBMIT_ARGS -------------------------------------------------------------------------------------
def with_driver_java_options(submit_args: str | None, options: list[str]) -> str:
    """PYSPARK_SUBMIT_ARGS with `options` added to the driver JVM's: appended to the `--driver-java-options` (or
    `--conf spark.driver.extraJavaOptions=`) already there, else a `--driver-java-options` before the trailing
    `pyspark-shell` (the primary resource: options go before it)."""
    ours = shlex.join(options)
    tokens = shlex.split(submit_args) if submit_args and submit_args.strip() else ["pyspark-shell"]
    for i in reversed(range(len(tokens))):  # spark-submit keeps the last one given
        token = tokens[i]
        if token == _DRIVER_OPTIONS and i + 1 < len(tokens):
            tokens[i + 1] = f"{tokens[i + 1]} {ours}".strip()
            return shlex.join(tokens)
        if token.startswith(f"{_DRIVER_OPTIONS}="):
            tokens[i] = f"{token} {ours}" if token != f"{_DRIVER_OPTIONS}=" else token + ours
            return shlex.join(tokens)
        if token.startswith(_DRIVER_OPTIONS_CONF) and i > 0 and tokens[i - 1] == "--conf":
            tokens[i] = f"{token} {ours}" if token != _DRIVER_OPTIONS_CONF else token + ours
            return shlex.join(tokens)
    at = len(tokens) - 1 if tokens[-1] == "pyspark-shell" else 0
    return shlex.join(tokens[:at] + [_DRIVER_OPTIONS, ours] + tokens[at:])


def enabled(env: Mapping[str, str]) -> bool:
    return env.get(SWITCH_VARIABLE, "").strip().lower() not in ("off", "0", "false", "no")


# --- the lock of the run making the archive ------------------------------------------------------------------
def take_lock(lock: Path, stale_seconds: float = STALE_SECONDS) -> bool:
    """Creates `lock` (O_EXCL): True when this caller holds it. A lock older than `stale_seconds` was left by a
    maker that died: it is taken over (two callers doing that at once at worst both make the archive, each into
    its own file)."""
    for _ in range(2):
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return True
        except FileExistsError:
            try:
                if time.time() - lock.stat().st_mtime <= stale_seconds:
                    return False
            except FileNotFoundError:
                continue  # released meanwhile: try again
            lock.unlink(missing_ok=True)
    return False


def keep_made_archive(made: Path, folder: Path, key: str, succeeded: bool) -> Path | None:
    """Moves the archive a run wrote into place (atomically), named with its size, when the run succeeded and wrote
    one; otherwise removes whatever it wrote. The archive kept, or None."""
    try:
        size = made.stat().st_size
        if succeeded and size > 0:
            archive = folder / f"{key}-{size}{SUFFIX}"
            os.replace(made, archive)
            return archive
    except FileNotFoundError:
        return None
    except OSError:
        pass  # not kept: the next run makes it again
    try:
        made.unlink(missing_ok=True)
    except OSError:
        pass
    return None


def intact_archive(folder: Path, key: str) -> Path | None:
    """The archive of `key` whose size is still the one it was made with. The JVM maps an archive without reading
    it: a shorter file (a copy cut short, a damaged disk) crashes it (SIGBUS) instead of costing only the sharing,
    so one of another size is removed, never used."""
    for archive in folder.glob(f"{key}-*{SUFFIX}"):
        try:
            intact = archive.stat().st_size == int(archive.name[len(key) + 1:-len(SUFFIX)])
        except (OSError, ValueError):
            intact = False
        if intact:
            return archive
        archive.unlink(missing_ok=True)
    return None


# --- one run -------------------------------------------------------------------------------------------------
@dataclass
class ArchiveUse:
    """What one Spark run does with the archive: `java_options` for its driver JVM; while it makes the archive,
    `made` is the file its JVM writes at exit, kept or removed by `finish`."""
    java_options: list[str]
    folder: Path | None = None
    key: str | None = None
    made: Path | None = None
    lock: Path | None = None

    def environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """`env` with the options in PYSPARK_SUBMIT_ARGS (unchanged without options)."""
        out = dict(env)
        if self.java_options:
            out[SUBMIT_ARGS_VARIABLE] = with_driver_java_options(env.get(SUBMIT_ARGS_VARIABLE), self.java_options)
        return out

    def finish(self, succeeded: bool) -> Path | None:
        """After the run's process ended (its JVM with it: it holds the run's pipes): the archive made kept only
        when the run succeeded; the lock released. The archive made, or None."""
        if self.made is None or self.folder is None or self.key is None or self.lock is None:
            return None
        try:
            return keep_made_archive(self.made, self.folder, self.key, succeeded)
        finally:
            self.lock.unlink(missing_ok=True)


NO_ARCHIVE = ArchiveUse([])


def _sharing(archive: Path) -> ArchiveUse:
    return ArchiveUse([f"-XX:SharedArchiveFile={archive}", QUIET])


class SparkClassArchive:
    """The archives in one folder of the project's cache."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def using(self, env: Mapping[str, str]) -> ArchiveUse:
        """Options that only use an archive already made, never make one."""
        key = current_key(env) if enabled(env) else None
        archive = intact_archive(self.folder, key) if key and self.folder.is_dir() else None
        return _sharing(archive) if archive else NO_ARCHIVE

    def for_run(self, env: Mapping[str, str]) -> ArchiveUse:
        """Use the archive when it is made; else make it, unless another run is making it."""
        key = current_key(env) if enabled(env) else None
        if key is None:
            return NO_ARCHIVE
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            archive = intact_archive(self.folder, key)
            if archive:
                return _sharing(archive)
            lock = self.folder / f"{key}.lock"
            if not take_lock(lock):
                return NO_ARCHIVE  # another run is making it
            archive = intact_archive(self.folder, key)  # made between the look and the lock
            if archive:
                lock.unlink(missing_ok=True)
                return _sharing(archive)
        except OSError:
            return NO_ARCHIVE
        for leftover in self.folder.glob(f"{key}.*{MAKING}"):  # of makers killed with their run
            try:
                leftover.unlink()
            except OSError:
                pass
        made = self.folder / f"{key}.{os.getpid()}-{uuid.uuid4().hex[:8]}{MAKING}"
        return ArchiveUse([f"-XX:ArchiveClassesAtExit={made}", QUIET], self.folder, key, made, lock)


def for_cache(cache: Path) -> SparkClassArchive:
    """The archives of the project cache `cache` (sdlf_cli.cache_dir)."""
    return SparkClassArchive(Path(cache) / FOLDER_NAME)
