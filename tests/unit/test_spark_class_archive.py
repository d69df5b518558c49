"""The Spark class archive's decisions (sdlf_cli.local.runtime.spark_class_archive), with no JVM: its key, the
driver options merged into PYSPARK_SUBMIT_ARGS, the lock of the run making it, and what a finished run keeps."""
from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import pytest

from sdlf_cli.local.runtime import spark_class_archive as archive_module
from sdlf_cli.local.runtime.spark_class_archive import (NO_ARCHIVE, QUIET, SUBMIT_ARGS_VARIABLE, SWITCH_VARIABLE,
                                                        ArchiveUse, archive_key, current_key, for_cache,
                                                        intact_archive, java_binary, keep_made_archive, spark_home,
                                                        take_lock, with_driver_java_options)

SUITE_ARGS = "--driver-java-options '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC' pyspark-shell"
OURS = ["-XX:SharedArchiveFile=/cache dir/spark-class-archive/k-9.jsa", QUIET]


@pytest.fixture
def installation(tmp_path) -> dict[str, str]:
    """An environment naming a JDK and a Spark home of files (nothing is run)."""
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_bytes(b"#!java")
    java.chmod(0o755)
    jars = tmp_path / "spark" / "jars"
    jars.mkdir(parents=True)
    (jars / "spark-core_2.12-3.5.4.jar").write_bytes(b"core")
    (jars / "spark-sql_2.12-3.5.4.jar").write_bytes(b"sql!")
    return {"JAVA_HOME": str(tmp_path / "jdk"), "SPARK_HOME": str(tmp_path / "spark"), "PATH": ""}


def driver_options(submit_args: str) -> list[str]:
    """The driver JVM's options as spark-submit reads PYSPARK_SUBMIT_ARGS (pyspark splits it with shlex, Spark's
    option parser splits the value as a shell does)."""
    tokens = shlex.split(submit_args)
    assert tokens[-1] == "pyspark-shell"
    values = [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == "--driver-java-options"]
    values += [t.split("=", 1)[1] for t in tokens if t.startswith("--driver-java-options=")]
    values += [t.split("=", 1)[1] for t in tokens if t.startswith("spark.driver.extraJavaOptions=")]
    assert len(values) == 1, tokens
    return shlex.split(values[0])


# --- key ----------------------------------------------------------------------------------------------------
def test_the_java_in_use_is_found_as_spark_class_finds_it(tmp_path, installation):
    real = tmp_path / "jdk" / "bin" / "java"
    linked = tmp_path / "alternatives" / "java"
    linked.parent.mkdir()
    linked.symlink_to(real)
    assert java_binary({"JAVA_HOME": installation["JAVA_HOME"]}) == real
    # Without JAVA_HOME: `java` on PATH, resolved through its links.
    assert java_binary({"PATH": str(linked.parent)}) == real
    assert java_binary({"PATH": str(tmp_path / "nothing")}) is None
    assert java_binary({"JAVA_HOME": str(tmp_path / "no-jdk"), "PATH": str(linked.parent)}) is None


def test_spark_home_is_the_variable_else_the_installed_pyspark():
    import pyspark

    assert spark_home({"SPARK_HOME": "/opt/spark"}) == Path("/opt/spark")
    assert spark_home({}) == Path(pyspark.__file__).parent


def test_the_key_changes_with_the_java_pyspark_or_any_jar(tmp_path, installation):
    java, jars = Path(installation["JAVA_HOME"]) / "bin" / "java", Path(installation["SPARK_HOME"]) / "jars"
    key = archive_key(java, "3.5.4", jars)
    assert archive_key(java, "3.5.4", jars) == key
    assert archive_key(java, "3.5.5", jars) != key

    changed = []
    (jars / "spark-sql_2.12-3.5.4.jar").write_bytes(b"sql2")  # same size, other time (the JVM checks both)
    os.utime(jars / "spark-sql_2.12-3.5.4.jar", ns=(1, 1))
    changed.append(archive_key(java, "3.5.4", jars))
    (jars / "extra.jar").write_bytes(b"x")
    changed.append(archive_key(java, "3.5.4", jars))
    java.write_bytes(b"#!another java")
    changed.append(archive_key(java, "3.5.4", jars))
    copy = tmp_path / "other-checkout" / "jars"  # the same jars elsewhere: another class path
    copy.mkdir(parents=True)
    for jar in jars.iterdir():
        (copy / jar.name).write_bytes(jar.read_bytes())
        os.utime(copy / jar.name, ns=(jar.stat().st_atime_ns, jar.stat().st_mtime_ns))
    changed.append(archive_key(java, "3.5.4", copy))
    assert len({key, *changed}) == 5


def test_without_java_or_spark_there_is_no_key(tmp_path, installation):
    assert current_key(installation) is not None
    assert current_key({**installation, "JAVA_HOME": str(tmp_path / "none")}) is None
    assert current_key({**installation, "SPARK_HOME": str(tmp_path / "none")}) is None


# --- PYSPARK_SUBMIT_ARGS ------------------------------------------------------------------------------------
def test_options_are_appended_to_the_driver_options_already_given():
    merged = with_driver_java_options(SUITE_ARGS, OURS)
    assert driver_options(merged) == ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", *OURS]
    assert shlex.split(merged)[0] == "--driver-java-options"

    for given in ("--master local[2] --driver-java-options=-Xss4m pyspark-shell",
                  "--conf spark.driver.extraJavaOptions=-Xss4m pyspark-shell"):
        merged = with_driver_java_options(given, OURS)
        assert driver_options(merged) == ["-Xss4m", *OURS], given


def test_without_driver_options_they_go_before_pyspark_shell_or_make_the_whole_variable():
    merged = with_driver_java_options("--master local[2] --conf spark.ui.enabled=false pyspark-shell", OURS)
    assert shlex.split(merged)[:4] == ["--master", "local[2]", "--conf", "spark.ui.enabled=false"]
    assert driver_options(merged) == OURS
    assert driver_options(with_driver_java_options(None, OURS)) == OURS
    assert driver_options(with_driver_java_options("  ", OURS)) == OURS
    assert shlex.split(with_driver_java_options(None, OURS)) == ["--driver-java-options", shlex.join(OURS),
                                                                 "pyspark-shell"]


def test_a_run_environment_gets_the_options_and_keeps_everything_else():
    env = {SUBMIT_ARGS_VARIABLE: SUITE_ARGS, "PATH": "/bin"}
    out = ArchiveUse(OURS).environment(env)
    assert out["PATH"] == "/bin" and driver_options(out[SUBMIT_ARGS_VARIABLE])[-2:] == OURS
    assert env[SUBMIT_ARGS_VARIABLE] == SUITE_ARGS  # the caller's mapping is not changed
    assert NO_ARCHIVE.environment(env) == env and SUBMIT_ARGS_VARIABLE not in NO_ARCHIVE.environment({})


# --- lock, keeping, damaged archives ------------------------------------------------------------------------
def test_one_caller_holds_the_lock_until_it_is_released_or_stale(tmp_path):
    lock = tmp_path / "k.lock"
    assert take_lock(lock) is True
    assert take_lock(lock) is False
    lock.unlink()
    assert take_lock(lock) is True
    old = time.time() - 16 * 60
    os.utime(lock, (old, old))  # left by a maker that died
    assert take_lock(lock) is True
    assert time.time() - lock.stat().st_mtime < 60  # taken over: a fresh lock, held
    assert take_lock(lock) is False


def test_a_made_archive_is_kept_only_after_a_successful_run_that_wrote_one(tmp_path):
    made = tmp_path / "k.1-a.making"
    made.write_bytes(b"x" * 10)
    assert keep_made_archive(made, tmp_path, "k", succeeded=True) == tmp_path / "k-10.jsa"
    assert not made.exists() and (tmp_path / "k-10.jsa").read_bytes() == b"x" * 10

    for content, succeeded in ((b"x" * 10, False), (b"", True)):
        made.write_bytes(content)
        assert keep_made_archive(made, tmp_path, "j", succeeded) is None
        assert not made.exists()
    assert keep_made_archive(made, tmp_path, "j", succeeded=True) is None  # the JVM wrote nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k-10.jsa"]


def test_an_archive_shorter_or_longer_than_it_was_made_is_removed_not_used(tmp_path):
    (tmp_path / "k-10.jsa").write_bytes(b"x" * 10)
    (tmp_path / "j-10.jsa").write_bytes(b"x" * 4)  # cut short: the JVM would crash mapping it
    (tmp_path / "i-nan.jsa").write_bytes(b"x")
    assert intact_archive(tmp_path, "k") == tmp_path / "k-10.jsa"
    assert intact_archive(tmp_path, "j") is None and intact_archive(tmp_path, "i") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k-10.jsa"]


# --- runs ---------------------------------------------------------------------------------------------------
def test_the_first_run_makes_the_archive_others_meanwhile_run_without_and_later_ones_use_it(tmp_path, installation):
    archives = for_cache(tmp_path / "cache")
    folder = tmp_path / "cache" / archive_module.FOLDER_NAME
    key = current_key(installation)

    maker = archives.for_run(installation)
    assert maker.made is not None and maker.made.parent == folder and (folder / f"{key}.lock").exists()
    assert maker.java_options == [f"-XX:ArchiveClassesAtExit={maker.made}", QUIET]
    assert archives.for_run(installation) == NO_ARCHIVE  # while it is being made

    maker.made.write_bytes(b"classes")  # what its JVM writes at exit
    archive = maker.finish(succeeded=True)
    assert archive == folder / f"{key}-7.jsa" and not (folder / f"{key}.lock").exists()
    user = archives.for_run(installation)
    assert user.java_options == [f"-XX:SharedArchiveFile={archive}", QUIET]
    assert user.finish(succeeded=True) is None and archive.exists()


def test_a_failed_making_run_leaves_nothing_and_the_next_run_makes_it_again(tmp_path, installation):
    archives = for_cache(tmp_path / "cache")
    folder = tmp_path / "cache" / archive_module.FOLDER_NAME
    maker = archives.for_run(installation)
    maker.made.write_bytes(b"classes")
    assert maker.finish(succeeded=False) is None
    assert list(folder.iterdir()) == []
    again = archives.for_run(installation)
    assert again.made is not None and again.made != maker.made


def test_files_left_by_a_killed_maker_are_removed_by_the_next_maker(tmp_path, installation):
    archives = for_cache(tmp_path / "cache")
    killed = archives.for_run(installation)
    killed.made.write_bytes(b"half")
    old = time.time() - 16 * 60
    os.utime(killed.lock, (old, old))
    maker = archives.for_run(installation)
    assert maker.made is not None and not killed.made.exists()


def test_the_switch_turns_it_off_and_the_read_only_look_never_makes_one(tmp_path, installation):
    archives = for_cache(tmp_path / "cache")
    assert archives.using(installation) == NO_ARCHIVE
    assert not (tmp_path / "cache").exists()
    assert archives.for_run({**installation, SWITCH_VARIABLE: "off"}) == NO_ARCHIVE
    assert not (tmp_path / "cache").exists()

    maker = archives.for_run(installation)
    maker.made.write_bytes(b"classes")
    archive = maker.finish(succeeded=True)
    assert archives.using(installation).java_options == [f"-XX:SharedArchiveFile={archive}", QUIET]
    assert archives.using({**installation, SWITCH_VARIABLE: "OFF"}) == NO_ARCHIVE
    assert archives.for_run({**installation, SWITCH_VARIABLE: "off"}) == NO_ARCHIVE
