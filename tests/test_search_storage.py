"""``search --storage``: two workers on one study (a real PostgreSQL server, and one SQLite file), one of them
SIGKILLed mid-trial; a bad URL, a missing driver, a refused connection; no password in any file or message."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.run.rundir import is_complete_checkpoint

from . import postgres_server as server_module
from .conftest import free_port
from .kill_checks import command_env
from .postgres_server import postgres_server

PASSWORD = "s3cret-PW-4-tests"


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL 15 server for this module's tests (skipped without one, failed on CI)."""
    with postgres_server(password=PASSWORD) as server:
        yield server


@pytest.fixture
def lr_space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text("train.lr: loguniform 1e-4 1e-2\n")
    return str(path)


def files_holding(text: str, *folders: Path) -> list[Path]:
    """Every file below ``folders`` whose bytes contain ``text``."""
    needle = text.encode()
    return [p for folder in folders for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_without_the_server_binaries_the_postgresql_tests_skip_but_fail_on_ci(monkeypatch, ci, outcome):
    monkeypatch.setattr(server_module, "server_binaries", lambda: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="PostgreSQL server binaries"), postgres_server():
        pass


# ------------------------------------------------------------------------------------- errors before training


def search_error(capsys, tmp_path, overrides, lr_space, url: str) -> str:
    out = tmp_path / "search"
    argv = ["search", "mrpc_minilm", "--trials", "2", "--space", lr_space, "--output-dir", str(out)]
    code = main([*argv, "--storage", url, *overrides])
    _, err = capsys.readouterr()
    assert code == 2 and err.startswith("error: --storage ") and err.count("\n") == 1, err
    assert PASSWORD not in err
    assert not out.exists()  # nothing trained, no folder made
    return err


def test_a_malformed_url_is_one_line_without_its_password(capsys, tmp_path, overrides, lr_space):
    err = search_error(capsys, tmp_path, overrides, lr_space, f"postgresql://me:{PASSWORD}@127.0.0.1:port/db")
    assert "postgresql://me:***@127.0.0.1:port/db: cannot open it" in err


def test_a_refused_connection_is_one_line(capsys, tmp_path, overrides, lr_space):
    port = free_port()  # nothing listens there
    err = search_error(capsys, tmp_path, overrides, lr_space, f"postgresql://me:{PASSWORD}@127.0.0.1:{port}/db")
    assert f"postgresql://me:***@127.0.0.1:{port}/db: cannot open it" in err and "refused" in err


def test_a_missing_driver_is_one_line_naming_the_install(capsys, tmp_path, monkeypatch, overrides, lr_space):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # what `import psycopg` meets where it is not installed
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    err = search_error(capsys, tmp_path, overrides, lr_space, f"postgresql://me:{PASSWORD}@127.0.0.1:1/db")
    assert 'the driver for postgresql is not installed: pip install -e ".[postgres]"' in err


def test_a_wrong_password_or_database_on_a_real_server_is_one_line(capsys, tmp_path, overrides, lr_space, postgres):
    base = f"postgresql://{postgres.user}:{{password}}@127.0.0.1:{postgres.port}/{{database}}"
    err = search_error(
        capsys, tmp_path, overrides, lr_space, base.format(password=PASSWORD + "x", database=postgres.database)
    )
    assert "password authentication failed" in err and PASSWORD not in err
    err = search_error(capsys, tmp_path, overrides, lr_space, base.format(password=PASSWORD, database="nosuchdb"))
    assert 'database "nosuchdb" does not exist' in err


# ------------------------------------------------------------------------------------- two workers, one study


def start_worker(argv: list[str], log: Path) -> subprocess.Popen:
    with open(log, "w") as handle:  # the child keeps its own copy of the descriptor
        command = [sys.executable, "-m", "mrpc_finetune", *argv]
        return subprocess.Popen(command, env=command_env(), stdout=handle, stderr=subprocess.STDOUT)


def trial_mid_run(out: Path, command_part: str) -> Path | None:
    """A trial folder under ``out`` whose run was started by a command holding ``command_part`` (its
    run_info.json says so: in one shared folder, that tells the two workers apart), that has a complete
    checkpoint and no result yet; else None. (Not the files the worker holds open: TensorBoard opens its events
    file only to append, so a worker holds files in its trial only while it writes them.)"""
    for info in sorted(out.glob("trial-*/seed-1/run_info.json")):
        try:
            started_by = json.loads(info.read_text())["command"]
        except (OSError, ValueError, KeyError):  # being written
            continue
        checkpoints = info.parent / "checkpoints"
        if command_part not in started_by or (info.parent / "metrics.json").exists() or not checkpoints.is_dir():
            continue
        if any(is_complete_checkpoint(p) for p in checkpoints.iterdir()):
            return info.parent.parent
    return None


def kill_mid_trial(worker: subprocess.Popen, out: Path, command_part: str, log: Path, timeout: float = 240) -> Path:
    """SIGKILL ``worker`` while it trains a trial (see :func:`trial_mid_run`); the trial's folder. It is stopped
    first and the trial checked again, so a trial that finished in between is let go and the next one awaited."""
    deadline = time.time() + timeout
    while True:
        assert worker.poll() is None and time.time() < deadline, log.read_text()
        if (trial := trial_mid_run(out, command_part)) is not None:
            worker.send_signal(signal.SIGSTOP)
            if not (trial / "seed-1" / "metrics.json").exists():
                worker.send_signal(signal.SIGKILL)
                worker.wait()
                return trial
            worker.send_signal(signal.SIGCONT)
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kind, shared",
    [("postgresql", False), ("sqlite", False), ("sqlite", True)],
    ids=["postgresql-two-machines", "sqlite-two-folders", "sqlite-one-folder"],
)
def test_two_workers_share_a_study_and_a_killed_trial_is_retried_once(
    kind, shared, request, tmp_path, overrides, lr_space
):
    """Workers A and B start at once, each with its own sampler seed and its own folder (as on two machines) or
    one folder (one machine, or a shared file system). A is SIGKILLed during its first trial; B fails that trial
    once its heartbeat stops, runs its point again (in one folder: resumed from A's checkpoint) and finishes the
    study's trials. search.json lists each trial once; no two trials share a folder, but a retry its original's."""
    url = request.getfixturevalue("postgres").url if kind == "postgresql" else f"sqlite:///{tmp_path / 'study.db'}"
    trials = 4
    outs = {name: tmp_path / ("search" if shared else f"worker-{name}") for name in "AB"}
    logs = {name: tmp_path / f"worker-{name}.log" for name in "AB"}
    workers = {}
    for seed, name in enumerate("AB", start=1):
        argv = ["search", "mrpc_minilm", "--trials", str(trials), "--space", lr_space, "--storage", url]
        argv += ["--output-dir", str(outs[name]), "--heartbeat", "1", "--sampler-seed", str(seed), "--no-prune"]
        workers[name] = start_worker([*argv, *overrides, "train.epochs=3"], logs[name])
    try:
        killed = kill_mid_trial(workers["A"], outs["A"], "--sampler-seed 1", logs["A"])
        assert not (killed / "seed-1" / "metrics.json").exists()  # mid-trial
        # B's next trial must start after A's trial missed 3 heartbeats (3 s), on any machine: however short B's
        # trials, it is held while that time passes (its own heartbeats pause, and no trial of its is then judged)
        workers["B"].send_signal(signal.SIGSTOP)
        time.sleep(3.5)
        workers["B"].send_signal(signal.SIGCONT)
        assert workers["B"].wait(timeout=300) == 0, logs["B"].read_text()
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    result = json.loads((outs["B"] / "search.json").read_text())
    rows = result["trials"]
    assert [t["number"] for t in rows] == list(range(len(rows)))  # every trial once
    assert result["counts"]["complete"] == trials and result["counts"]["fail"] == 1, rows
    (failed,) = [t for t in rows if t["state"] == "fail"]
    assert failed["dir"] == str(killed) and killed.name == f"trial-{failed['number']}"
    (retry,) = [t for t in rows if t.get("retry_of") == failed["number"]]
    assert retry["state"] == "complete" and retry["params"] == failed["params"]
    drawn = [t["params"]["train.lr"] for t in rows if t is not retry]
    assert len(set(drawn)) == len(drawn)  # the two workers' samplers drew different points
    assert retry["dir"] == str(outs["B"] / killed.name)  # B's own folder: A's may be on another machine
    assert ("resuming from" in logs["B"].read_text()) == shared  # one folder: from A's last checkpoint
    dirs = [t["dir"] for t in rows if t is not retry]
    assert len(set(dirs)) == len(dirs)  # no trial folder shared but by a retry
    complete = [t for t in rows if t["state"] == "complete"]
    assert all(Path(t["dir"]).parent == outs["B"] for t in complete)
    assert all((Path(t["dir"]) / "seed-1" / "metrics.json").is_file() for t in complete)
    if not shared:
        assert sorted(p.name for p in outs["A"].glob("trial-*")) == [killed.name]  # A got no further
    assert result["storage"] == (url.replace(PASSWORD, "***") if kind == "postgresql" else url)
    leaks = files_holding(PASSWORD, outs["A"], outs["B"], *logs.values())
    assert not leaks, leaks
    if kind == "postgresql":  # the password was on both command lines: run_info, model cards, search.json
        info = json.loads((Path(complete[0]["dir"]) / "seed-1" / "run_info.json").read_text())
        assert f"--storage 'postgresql://{request.getfixturevalue('postgres').user}:***@127.0.0.1:" in info["command"]


OPEN_AT = """
import sys, time
from pathlib import Path
from mrpc_finetune.experiments.search import _storage
url, barrier, workers = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
(barrier / str(len(list(barrier.iterdir())) + time.time())).touch()  # ready: imports done
while len(list(barrier.iterdir())) < workers:
    time.sleep(0.001)
_storage(url, 1)
"""


@pytest.mark.slow  # three processes racing to create the tables of a new database
def test_workers_opening_an_empty_database_at_once_all_get_the_study(tmp_path, postgres):
    """Their CREATE TABLEs race (PostgreSQL: a unique violation in pg_type); the losers open it again."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(postgres.url)
    with engine.begin() as connection:  # an empty database, whatever this module's other tests left in it
        connection.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    barrier = tmp_path / "ready"
    barrier.mkdir()
    command = [sys.executable, "-c", OPEN_AT, postgres.url, str(barrier), "3"]  # all three go once all are ready
    workers = [subprocess.Popen(command, env=command_env(), stderr=subprocess.PIPE, text=True) for _ in range(3)]
    errors = [worker.communicate(timeout=120)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0, 0], errors
