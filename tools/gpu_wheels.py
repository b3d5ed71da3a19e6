"""Fill gpu-wheels/ with the few wheels a GPU server that brings its own CUDA torch, transformers, ... lacks.

    make gpu-wheels                                                   # this machine's Python and platform
    make gpu-wheels TARGET_PYTHON=3.12 TARGET_PLATFORM=manylinux_2_28_x86_64   # the server's
    python tools/gpu_wheels.py --dest gpu-wheels [--python-version 3.12 --platform manylinux_2_28_x86_64]

The server of docs/gpu.md has torch (CUDA), transformers, huggingface_hub, tokenizers, accelerate, pandas,
pyarrow, tensorboard and scikit-learn (with what they pull in: numpy, scipy, safetensors, tqdm, pyyaml, fsspec,
httpx, pillow, ...), but not datasets, evaluate, optuna, SQLAlchemy nor the MiniLM model package. MISSING is what
pip adds over exactly that set to install this project's run-time dependencies (the model package left out: its
83.5 MB wheel is over what one copy may carry; gpu-check uses a random-weight model of its shape) plus pytest and
pytest-xdist (resolved with `pip install --dry-run --report` in a venv holding only the server's packages,
2026-12-02). Versions follow requirements.lock; the rest are pinned here. Also written: gpu-wheels/requirements.txt
(the names, unpinned, so that pip keeps whatever the server already has) and the install lines (docs/gpu.md):

    python3 -m pip install --no-index --find-links gpu-wheels --no-deps -r gpu-wheels/requirements.txt
    python3 -m pip install --no-index --find-links gpu-wheels --no-deps -e .
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wheelhouse import normalize, platform_tags, read_pins  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MISSING = (
    # datasets and evaluate (mrpc_finetune.data, .metrics), and theirs
    "datasets",
    "evaluate",
    "dill",
    "multiprocess",
    "xxhash",
    "requests",
    "urllib3",
    "charset-normalizer",
    "aiohttp",  # fsspec[http], which datasets requires
    "aiohappyeyeballs",
    "aiosignal",
    "attrs",
    "frozenlist",
    "multidict",
    "propcache",
    "yarl",
    # optuna (search) and its SQLAlchemy storage
    "optuna",
    "alembic",
    "Mako",
    "SQLAlchemy",
    "colorlog",
    # matplotlib (repeat/search plots, bench's plot)
    "matplotlib",
    "contourpy",
    "cycler",
    "fonttools",
    "kiwisolver",
    "pyparsing",
    # the tests part
    "pytest",
    "pluggy",
    "iniconfig",
    "pytest-xdist",
    "execnet",
    # the build backend of `pip install --no-index -e .`
    "setuptools",
)
PINS = {"pytest-xdist": "3.8.0", "execnet": "2.1.2", "setuptools": "80.9.0"}
"""Versions of what requirements.lock does not pin."""
SERVER_RELAXES = {"torch": "2.11", "transformers": "5.17", "huggingface_hub": "1.33"}
"""The server's versions of packages requirements.lock pins higher (docs/gpu.md)."""


def requirements(lock: Path) -> list[str]:
    pins = read_pins(lock) | {normalize(k): v for k, v in PINS.items()}
    missing = [name for name in MISSING if normalize(name) not in pins]
    if missing:
        raise SystemExit(f"error: no version for {', '.join(missing)} in {lock} nor in PINS")
    return [f"{name}=={pins[normalize(name)]}" for name in MISSING]


def download(dest: Path, wanted: list[str], python_version: str | None, platform: str | None) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(dest)]
    if python_version:
        cmd += ["--python-version", python_version]
    for tag in platform_tags(platform) if platform else []:
        cmd += ["--platform", tag]
    subprocess.run(cmd + wanted, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", default="gpu-wheels")
    parser.add_argument("--lock", default=str(REPO / "requirements.lock"))
    parser.add_argument("--python-version", help="the server's Python, e.g. 3.12 (default: this one)")
    parser.add_argument("--platform", help="the server's platform, e.g. manylinux_2_28_x86_64 (default: this one)")
    args = parser.parse_args(argv)
    dest = Path(args.dest)
    dest.mkdir(parents=True, exist_ok=True)
    wanted = requirements(Path(args.lock))
    download(dest, wanted, args.python_version, args.platform)
    (dest / "requirements.txt").write_text("\n".join(MISSING) + "\n")
    wheels = sorted(dest.glob("*.whl"))
    size = sum(w.stat().st_size for w in wheels)
    print(f"{dest}: {len(wheels)} wheels, {size / 1e6:.1f} MB ({size / 2**20:.1f} MiB)")
    print("on the server, in the checkout (docs/gpu.md):")
    print(f"  python3 -m pip install --no-index --find-links {dest} --no-deps -r {dest}/requirements.txt")
    print(f"  python3 -m pip install --no-index --find-links {dest} --no-deps -e .")
    return 0


if __name__ == "__main__":
    sys.exit(main())
