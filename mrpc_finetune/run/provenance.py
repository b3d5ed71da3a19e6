"""Where a run came from: the command, the data and model it read, the software and hardware it ran on.

    recipe = absolute_paths(recipe)      # so RUN/recipe.json resolves from any working folder
    info = run_info(recipe, num_processes=1, precision="fp32")       # -> RUN/run_info.json

Nothing from the environment is recorded except what is named here, so Hub, W&B or MLflow tokens never reach a
run directory; a ``NAME=VALUE`` argument whose name looks like a secret is recorded as ``NAME=<redacted>``, and the
password of any URL (``--storage postgresql://USER:PASSWORD@HOST/DB``) as ``***`` (``errors.redact``).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import importlib.metadata
import os
import platform
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mrpc_finetune.errors import redact
from mrpc_finetune.models import is_local_path
from mrpc_finetune.recipe.schema import DataConfig, ModelConfig, Recipe

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The checkout holding this package; its git commit is recorded when it is a git work tree."""
VERSIONED = (
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "evaluate",
    "tokenizers",
    "huggingface-hub",
    "safetensors",
    "mrpc-finetune",
)
"""Distributions whose versions are recorded (plus Python's)."""
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)


def run_info(
    recipe: Recipe,
    *,
    num_processes: int,
    precision: str,
    argv: list[str] | None = None,
    rows_excluded: dict[str, int] | None = None,
) -> dict:
    """The provenance of a run of ``recipe`` started by ``argv`` (default ``sys.argv``), as a JSON-ready dict;
    ``rows_excluded``: the rows each split lost to ``data.exclude``, recorded beside the data's files."""
    data = data_source(recipe.data)
    if recipe.data.exclude:
        data["exclude"] = {"items": list(recipe.data.exclude), "rows_dropped": dict(rows_excluded or {})}
    return {
        "command": command_line(sys.argv if argv is None else argv),
        "working_folder": os.getcwd(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": model_source(recipe.model),
        "data": data,
        "versions": package_versions(),
        "device": device(),
        "precision": precision,
        "num_processes": num_processes,
        "platform": platform.platform(),
        "git": git_state(),
    }


def absolute_paths(recipe: Recipe) -> Recipe:
    """The recipe with ``data.dir``, ``data.file``, a local ``model.name`` and ``output_dir`` made absolute;
    Hub ids and ``package:`` models unchanged."""
    data = dataclasses.replace(recipe.data, dir=_absolute(recipe.data.dir), file=_absolute(recipe.data.file))
    model = recipe.model
    if is_local_path(model.name):
        model = dataclasses.replace(model, name=_absolute(model.name))
    return dataclasses.replace(recipe, data=data, model=model, output_dir=_absolute(str(recipe.run_dir)))


def command_line(argv: list[str]) -> str:
    """The shell-quoted command, ``python -m mrpc_finetune ...`` when it was started that way."""
    argv = [redact(_redact_argument(item)) for item in argv]
    if argv and Path(argv[0]).name == "__main__.py" and Path(argv[0]).parent.name == "mrpc_finetune":
        argv = [sys.executable, "-m", "mrpc_finetune", *argv[1:]]
    return redact(_redact_secret_values(shlex.join(argv)))


def model_source(cfg: ModelConfig) -> dict[str, Any]:
    """A ``package:`` model or a local folder as its absolute folder; a Hub id with its revision (and the commit
    of the cached snapshot, when one is cached)."""
    from mrpc_finetune.models import resolve_model_path

    if cfg.name.startswith("package:"):
        module = cfg.name.removeprefix("package:")
        distributions = importlib.metadata.packages_distributions().get(module, [])
        return {
            "name": cfg.name,
            "kind": "package",
            "path": _absolute(resolve_model_path(cfg.name)),
            "package_version": _version(distributions[0]) if distributions else None,
        }
    if is_local_path(cfg.name):
        return {"name": cfg.name, "kind": "folder", "path": _absolute(cfg.name)}
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(cfg.name, "config.json", revision=cfg.revision)
    commit = Path(cached).parent.name if isinstance(cached, str) else None
    return {"name": cfg.name, "kind": "hub", "revision": cfg.revision, "cached_commit": commit}


def data_source(cfg: DataConfig) -> dict[str, Any]:
    """Local files as absolute paths with a fingerprint each; Hub data as its dataset id and config."""
    from mrpc_finetune.data.loading import find_split_files
    from mrpc_finetune.recipe.tasks import task_for

    if cfg.file:
        return {"kind": "file", "file": _absolute(cfg.file), "files": {"train": fingerprint(Path(cfg.file))}}
    if cfg.dir:
        files = find_split_files(cfg.dir, task_for(cfg))
        return {"kind": "folder", "dir": _absolute(cfg.dir), "files": {s: fingerprint(p) for s, p in files.items()}}
    return {"kind": "hub", "dataset": cfg.hub_dataset, "config": cfg.task}


def fingerprint(path: Path) -> dict[str, Any]:
    """Absolute path, size, sha256 and the number of data rows (None where counting would mean parsing JSON)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return {
        "path": _absolute(str(path)),
        "bytes": path.stat().st_size,
        "sha256": digest.hexdigest(),
        "rows": rows(path),
    }


def rows(path: Path) -> int | None:
    """Data rows as the loaders count them: non-blank lines of JSON lines, records after a CSV header (quoted line
    breaks included), lines after a tab file's header, a Parquet file's row count."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            return max(sum(1 for record in csv.reader(handle) if record) - 1, 0)
    if suffix == ".tsv":
        with open(path, "rb") as handle:
            return max(sum(1 for line in handle if line.strip()) - 1, 0)
    if suffix == ".parquet":
        import pyarrow.parquet

        return pyarrow.parquet.ParquetFile(path).metadata.num_rows
    return None


def package_versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **{name: _version(name) for name in VERSIONED}}


def device() -> dict[str, Any]:
    """``cuda`` with the device name and count, or ``cpu`` with the processor and core count."""
    import torch

    if torch.cuda.is_available():
        return {
            "type": "cuda",
            "name": torch.cuda.get_device_name(0),
            "count": torch.cuda.device_count(),
            "cuda_version": torch.version.cuda,
        }
    return {"type": "cpu", "name": platform.processor() or platform.machine(), "count": os.cpu_count()}


def git_state(root: Path | None = None) -> dict[str, Any] | None:
    """Commit and dirtiness of the project's checkout; None outside a git work tree (or without git)."""
    root = PROJECT_ROOT if root is None else root

    def git(*args: str) -> str:
        env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # `git status` must not take the index lock from an editor
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10, env=env)
        if done.returncode != 0:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != root.resolve():
            return None  # the package sits inside some other repository (e.g. a venv in a checkout)
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return None


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(path))


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _redact_argument(item: str) -> str:
    name, sep, _ = item.partition("=")
    return f"{name}=<redacted>" if sep and SECRET_NAME.search(name.lstrip("-")) else item


def _redact_secret_values(text: str) -> str:
    """Replace the value of every secret-looking environment variable (``HF_TOKEN``, ``WANDB_API_KEY``, ...)."""
    for name, value in os.environ.items():
        if SECRET_NAME.search(name) and len(value) >= 8:
            text = text.replace(value, "<redacted>")
    return text
