"""The fork server of Python shell job runs: a run is the script as `python <script> <args>` would run it (argv,
folder, environment, output, exit status, traceback, atexit, threads), can time out and be killed, and a folder
shadowing a module the server imported runs as a plain process instead."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sdlf_cli.local.runtime.fork_server import ForkServer

PRELOADED = "fractions"  # cheap to import, and no part of a bare interpreter's start

DESCRIBES_ITSELF = textwrap.dedent("""
    import json, os, sys
    preloaded = "fractions" in sys.modules
    print(json.dumps({"argv": sys.argv, "cwd": os.getcwd(), "name": __name__, "path0": sys.path[0],
                      "region": os.environ.get("AWS_REGION"), "stray": os.environ.get("ONLY_IN_THE_SERVER"),
                      "file": __file__, "preloaded": preloaded}))
    print("to stderr", file=sys.stderr)
""")


@pytest.fixture()
def server(tmp_path):
    env = {**os.environ, "ONLY_IN_THE_SERVER": "x"}
    forks = ForkServer(sys.executable, [PRELOADED], env, tmp_path / "fork-server.log")
    yield forks
    forks.close()


def _script(folder: Path, text: str, name: str = "job.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def _run(server: ForkServer, script: Path, *args: str, env: dict | None = None, timeout: float = 60):
    process = server.start([str(script), *args], script.parent, env or _env())
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def _plain(script: Path, *args: str, env: dict | None = None):
    done = subprocess.run([sys.executable, str(script), *args], cwd=script.parent, env=env or _env(),
                          capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def _env() -> dict:
    return {"PATH": os.environ.get("PATH", ""), "AWS_REGION": "eu-west-1", "PYTHONUNBUFFERED": "1"}


def test_a_run_is_the_script_as_python_runs_it_with_the_server_s_modules_already_imported(server, tmp_path):
    script = _script(tmp_path / "run", DESCRIBES_ITSELF)
    forked, plain = _run(server, script, "--JOB_NAME", "j"), _plain(script, "--JOB_NAME", "j")
    assert (forked[0], forked[2]) == (plain[0], plain[2]) == (0, "to stderr\n")
    forked_view, plain_view = json.loads(forked[1]), json.loads(plain[1])
    assert forked_view.pop("preloaded") is True and plain_view.pop("preloaded") is False
    assert forked_view == plain_view
    assert forked_view["region"] == "eu-west-1" and forked_view["stray"] is None  # the run's environment only
    assert forked_view["path0"] == str(script.parent) and forked_view["name"] == "__main__"


@pytest.mark.parametrize("ending, code", [
    ("raise SystemExit(3)", 3),
    ("sys.exit('bad input')", 1),
    ("raise ValueError(\"column 'id' is missing\")", 1),
    ("pass", 0),
])
def test_exit_status_traceback_atexit_and_threads_are_the_interpreter_s(server, tmp_path, ending, code):
    script = _script(tmp_path / "run", textwrap.dedent(f"""
        import atexit, sys, threading, time
        atexit.register(lambda: print("atexit ran"))
        threading.Thread(target=lambda: (time.sleep(0.2), print("thread finished"))).start()
        {ending}
    """))
    forked, plain = _run(server, script), _plain(script)
    assert forked == plain
    assert forked[0] == code and forked[1] == "thread finished\natexit ran\n"
    if "ValueError" in ending:
        lines = forked[2].splitlines()
        assert lines[0] == "Traceback (most recent call last):" and lines[-1] == "ValueError: column 'id' is missing"
        assert "fork_server" not in forked[2] and "runpy" not in forked[2]


def test_a_run_past_its_timeout_can_be_killed_and_its_output_so_far_read(server, tmp_path):
    script = _script(tmp_path / "run", "import time\nprint('working', flush=True)\ntime.sleep(60)\n")
    process = server.start([str(script)], script.parent, _env())
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        process.communicate(timeout=1.0)
    process.kill()
    stdout, _ = process.communicate(timeout=10)
    assert stdout == "working\n" and process.returncode == -9 and time.monotonic() - started < 10


def test_a_folder_holding_a_module_the_server_imported_is_not_forked(server, tmp_path):
    assert server.can_run(_script(tmp_path / "clean", "print(1)\n").parent)
    shadowed = _script(tmp_path / "shadow", "print(1)\n")
    (shadowed.parent / f"{PRELOADED}.py").write_text("")
    assert not server.can_run(shadowed.parent)
    assert not server.can_run(_script(tmp_path / "named", "print(1)\n", name="json.py").parent)  # one it imported


def test_closing_the_server_ends_its_runs(tmp_path):
    server = ForkServer(sys.executable, [PRELOADED], dict(os.environ), tmp_path / "fork-server.log")
    process = server.start([str(_script(tmp_path / "run", "import time\ntime.sleep(60)\n"))], tmp_path / "run", _env())
    server.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"/proc/{process.pid}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{process.pid}").exists()
    assert process.communicate(timeout=5)[0] == "" and process.returncode == -9


MAKES_CLIENTS = textwrap.dedent("""
    import json, boto3, botocore.session
    s3 = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s",
                      endpoint_url="http://127.0.0.1:1")
    table = boto3.resource("dynamodb", region_name="eu-west-1", aws_access_key_id="k",
                           aws_secret_access_key="s").Table("t")
    loader = botocore.session.Session().get_component("data_loader")  # a new session's: the shared one, or its own
    print(json.dumps({"operations": sorted(s3.meta.service_model.operation_names), "region": s3.meta.region_name,
                      "endpoint": s3.meta.endpoint_url, "table": table.name,
                      "shared": len(getattr(loader, "_cache", {}))}))
""")


def test_a_child_s_clients_read_the_service_models_the_server_loaded_and_are_a_fresh_process_s(tmp_path):
    """The server of Lambda workers loads the botocore models of the services the lake calls once; a child's
    clients are what a fresh interpreter's are, from those models; with its own AWS_DATA_PATH it loads its own."""
    forks = ForkServer(sys.executable, ["boto3"], dict(os.environ), tmp_path / "fork-server.log",
                       models=["s3", "dynamodb"])
    try:
        script = _script(tmp_path / "run", MAKES_CLIENTS)
        code, out, err = _run(forks, script)
        assert code == 0, err
        forked = json.loads(out)
        own = _run(forks, script, env={**_env(), "AWS_DATA_PATH": str(tmp_path / "models")})
        assert own[0] == 0, own[2]
        isolated = json.loads(own[1])
    finally:
        forks.close()
    plain = json.loads(_plain(script)[1])
    assert forked.pop("shared") > 0 and plain.pop("shared") == 0  # the server's loader: models already read
    assert isolated.pop("shared") == 0  # a session with a data path of its own reads its own models
    assert forked == plain == isolated
    assert "PutObject" in forked["operations"] and forked["region"] == "eu-west-1"


COLLECTS = textwrap.dedent("""
    import gc, json, weakref

    class Node:
        pass

    def cycle():
        a, b = Node(), Node()
        a.other, b.other = b, a
        return weakref.ref(a)

    gone = cycle()
    found = gc.collect()
    print(json.dumps({"frozen": gc.get_freeze_count(), "enabled": gc.isenabled(), "collected": gone() is None,
                      "found": found > 0}))
""")


def test_the_server_s_objects_are_frozen_out_of_a_child_s_collections_and_the_child_s_own_are_collected(server,
                                                                                                    tmp_path):
    """_freeze_preloaded: what the server imported sits in the collector's permanent generation, so a child's
    collections (the one at its exit too) do not walk - and copy - those pages; the child's own cycles are freed."""
    script = _script(tmp_path / "run", COLLECTS)
    code, out, err = _run(server, script)
    assert code == 0, err
    forked, plain = json.loads(out), json.loads(_plain(script)[1])
    assert forked.pop("frozen") > 1000 and plain.pop("frozen") == 0
    assert forked == plain == {"enabled": True, "collected": True, "found": True}
