"""Start a command, SIGKILL it once a run directory holds a complete checkpoint, and run it again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from mrpc_finetune.run.rundir import RunDir, is_complete_checkpoint

from .conftest import REPO


def command_env() -> dict[str, str]:
    """This checkout's code, one thread per process (tiny models on a shared machine)."""
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def kill_after_checkpoint(argv: list[str], run_dir: Path, timeout: float = 240) -> float:
    """Run ``python -m mrpc_finetune ARGV``; SIGKILL it when ``run_dir`` has a complete checkpoint (mid-run).

    Returns the time of the kill.
    """
    command = [sys.executable, "-m", "mrpc_finetune", *argv]
    process = subprocess.Popen(command, env=command_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run, deadline = RunDir(run_dir), time.time() + timeout
    while not (run.checkpoints.is_dir() and any(is_complete_checkpoint(p) for p in run.checkpoints.iterdir())):
        assert process.poll() is None and time.time() < deadline, process.stdout.read()
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdout.close()
    return time.time()


def run_again(argv: list[str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "mrpc_finetune", *argv]
    result = subprocess.run(command, env=command_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result
