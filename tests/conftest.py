import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

import botocore.session
import pytest

from sdlf_cli.aws.session import share_models_with_every_session
from sdlf_cli.aws.user_agent import sanitized_once
from sdlf_cli.cache_dir import CACHE_DIR_VARIABLE

ROOT = Path(__file__).resolve().parent.parent
# The suite starts hundreds of Python processes (xdist workers, the CLI, emulators, builds, Glue jobs) that
# import the same modules. With bytecode caching turned off in the environment (PYTHONDONTWRITEBYTECODE),
# each of them compiles every module it imports from source: seconds of CPU per process. The suite caches
# bytecode as Python does by default (__pycache__ is ignored by git and left out of every package).
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
# Every Spark JVM the suite starts (the unit tests' local session, the emulator's Glue job runs) lives for
# seconds over small data: C1-compiled code is fast enough there, while C2's compiler threads and a parallel
# collector take the cores from the other tests (half the JVMs' CPU). Spark itself runs as configured.
os.environ.setdefault("PYSPARK_SUBMIT_ARGS",
                      "--driver-java-options '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC' pyspark-shell")
# Lambda code imports the shared library from its layer; put the layer on the path for unit tests.
sys.path.insert(0, str(ROOT / "lambda" / "layers" / "datalake" / "python"))


# moto's `mock_aws` gives each test a new boto3 default session (so the test's credentials apply), and every new
# botocore session read and parsed the service models again: half the CPU of the moto-backed unit tests
# (test_stage_a.py and test_stage_b.py: 51 s -> 26 s). Every session of a test process reads them from sdlf's
# shared loader instead (a session given its own AWS_DATA_PATH keeps its own). botocore's own registration is kept
# for the test that shows what a session without the shared loader does.
ORIGINAL_REGISTER_DATA_LOADER = botocore.session.Session._register_data_loader
share_models_with_every_session()
# The tests' own clients (moto's, the emulator's helpers') as sdlf's sessions do (sdlf_cli.aws.user_agent).
sanitized_once()

# The files that take the longest (measured in a full run, longest first). xdist hands whole files to its
# workers in collection order (pytest.ini: --dist loadfile --no-loadscope-reorder), so these start first and
# the rest fills in around them: a long file that starts last keeps one worker busy while the other idles.
LONGEST_FIRST = (
    "tests/e2e/test_cicd_pipeline.py",
    # Not long, but its Spark run makes the class archive every later Spark JVM of the suite starts from.
    "tests/integration/test_emulator_glue_jobs.py",
    "tests/integration/test_chaos.py",
    "tests/integration/test_stage_b_reliability_e2e.py",
    "tests/integration/test_legislators_e2e.py",
    "tests/integration/test_local_restarts.py",
    "tests/unit/test_cli.py",
    "tests/integration/test_stage_b_engines_e2e.py",
    "tests/integration/test_hostile_corpus_e2e.py",
    "tests/unit/test_glue_heavy_transform.py",
    "tests/e2e/test_demo.py",
    "tests/integration/test_team_isolation_emulator.py",
    "tests/integration/test_stage_b_e2e.py",
    "tests/unit/test_glue_columnar.py",
    "tests/integration/test_stage_a_e2e.py",
    "tests/unit/test_checkov.py",
    # Mostly waiting (each redrive ends on one-second long polls): early, it overlaps the others' CPU work.
    "tests/unit/test_redrive.py",
    "tests/unit/test_glue_quality.py",
    "tests/unit/test_glue_dataset_transforms.py",
)


# The files whose tests use the `spark` fixture (one local Spark session per process, tests/unit/test_glue_helpers.py).
# They go to one worker as one unit: spread over three workers they started three JVMs, ~20 s of CPU each.
SHARED_SPARK_SESSION = (
    "tests/unit/test_glue_heavy_transform.py",
    "tests/unit/test_glue_columnar.py",
    "tests/unit/test_glue_quality.py",
    "tests/unit/test_glue_dataset_transforms.py",
)
SPARK_UNIT = "spark session: " + ", ".join(Path(f).name for f in SHARED_SPARK_SESSION)


def pytest_configure(config):
    """The suite's projects share one sdlf cache (sdlf_cli.cache_dir), as a CI runner's checkouts can: the lakes
    it deploys vendor the same layer requirements, and its CLI runs, demo and deploys lint the same templates.
    Made by the controller before the xdist workers start, so they and every process they start inherit it;
    tests of the cache itself give their own folder."""
    if hasattr(config, "workerinput") or os.environ.get(CACHE_DIR_VARIABLE):
        return
    folder = tempfile.mkdtemp(prefix="sdlf-test-cache-")
    os.environ[CACHE_DIR_VARIABLE] = folder
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """A test process ends holding the emulator's backends, cfn-lint's schemas and every fixture's data: its
    interpreter's last garbage collection would walk all of it again (sdlf_cli.cli does the same at its end).
    Last, so pytest's own collection, which reports exceptions raised in finalizers, still sees everything."""
    gc.freeze()


def pytest_xdist_make_scheduler(config, log):
    """pytest.ini's `--dist loadfile`, with the files sharing a Spark session as one unit of work."""
    if config.getvalue("dist") != "loadfile":
        return None  # another distribution asked for on the command line: xdist's own
    from xdist.scheduler import LoadFileScheduling

    class SparkFilesTogether(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return SPARK_UNIT if path in SHARED_SPARK_SESSION else path

    return SparkFilesTogether(config, log)


def pytest_xdist_auto_num_workers(config):
    """`-n auto` (pytest.ini): one worker per usable core, and two more. Much of a worker's time is spent waiting -
    on the Lambda worker processes, CLI subprocesses, Spark JVMs and Glue job processes it starts, on an
    emulator's queues and schedules - and with one worker per core the cores were idle a third of a full run
    (on 2 cores: 3 workers 7 min 42 s, 4 workers 7 min 22 s, for the same CPU)."""
    return len(os.sched_getaffinity(0)) + 2


def pytest_collection_modifyitems(session, config, items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}

    def file_rank(item) -> int:
        return rank.get(_relative(item), len(rank))

    items.sort(key=file_rank)  # stable: every other file, and the tests within a file, keep their order
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()) and _relative(item) not in SHARED_SPARK_SESSION:
            raise pytest.UsageError(f"{_relative(item)} uses the `spark` fixture: add it to SHARED_SPARK_SESSION in "
                                    "tests/conftest.py, so its tests run in the worker that has the session")


def _relative(item) -> str:
    path = Path(str(item.path)).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
