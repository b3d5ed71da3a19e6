"""Real MRPC comes from MRPC_DATA (make: DATA=) only, never from a path beside the checkout: unset, the tests that
need it skip (fail under CI=true), make test / test-all pass nothing, and make bench stops with one line."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .conftest import REPO, real_mrpc_folder

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="no make here")


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_unset_mrpc_data_skips_and_fails_on_ci(ci, outcome, monkeypatch):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="set MRPC_DATA"):
        real_mrpc_folder(None)


def make_dry_run(*argv: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("MRPC_DATA", "DATA", "MAKEFLAGS", "MFLAGS")}
    return subprocess.run(
        ["make", "--no-print-directory", "-n", *argv], cwd=REPO, env=clean | env, capture_output=True, text=True
    )


@needs_make
def test_make_passes_mrpc_data_only_when_set():
    for target in ("test", "test-all"):
        unset = make_dry_run(target)
        assert unset.returncode == 0, unset.stderr
        assert "MRPC_DATA" not in unset.stdout and "shared" not in unset.stdout
        assert "MRPC_DATA=/data/mrpc " in make_dry_run(target, MRPC_DATA="/data/mrpc").stdout
        assert "MRPC_DATA=/other " in make_dry_run(target, "DATA=/other", MRPC_DATA="/data/mrpc").stdout


@needs_make
def test_make_bench_without_data_stops_with_one_line():
    unset = make_dry_run("bench")
    assert unset.returncode != 0
    assert unset.stdout == ""
    assert len(unset.stderr.strip().splitlines()) == 1
    assert "make bench needs real MRPC: set MRPC_DATA or pass DATA=DIR" in unset.stderr
    assert "--data /data/mrpc " in make_dry_run("bench", MRPC_DATA="/data/mrpc").stdout
