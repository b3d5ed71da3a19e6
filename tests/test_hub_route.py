"""The Hub route without a Hub: data from a folder in the Hub's repository layout of ``nyu-mll/glue``, a model
from a Hub snapshot in a local cache (``HF_HUB_OFFLINE=1``), through the very calls that download them online."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.data import loading

from .conftest import REPO, mrpc_rows

GLUE_CARD = """---
pretty_name: GLUE (General Language Understanding Evaluation benchmark)
configs:
{configs}
dataset_info:
- config_name: mrpc
  features:
  - name: sentence1
    dtype: string
  - name: sentence2
    dtype: string
  - name: label
    dtype:
      class_label:
        names:
          '0': not_equivalent
          '1': equivalent
  - name: idx
    dtype: int32
---

# Dataset Card for GLUE (tiny test copy)
"""


def write_glue_repo(folder: Path, configs: dict[str, dict[str, list[dict]]]) -> Path:
    """``CONFIG/SPLIT-00000-of-00001.parquet`` per config and split, and a README whose YAML maps them, as the
    Hub's ``nyu-mll/glue`` repository does."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    entries = []
    for config, splits in configs.items():
        (folder / config).mkdir(parents=True)
        entries += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            table = pa.Table.from_pylist(rows).cast(
                pa.schema(
                    [("sentence1", pa.string()), ("sentence2", pa.string()), ("label", pa.int64()), ("idx", pa.int32())]
                )
            )
            pq.write_table(table, folder / config / f"{split}-00000-of-00001.parquet")
            entries += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    (folder / "README.md").write_text(GLUE_CARD.format(configs="\n".join(entries)))
    return folder


@pytest.fixture(scope="module")
def glue_repo(tmp_path_factory) -> Path:
    """mrpc (64 train, 20 validation, 10 unlabelled test rows, as the tiny MRPC files) and a 12-row rte config."""
    test_rows = [dict(row, label=-1) for row in mrpc_rows(10, seed=3)]
    return write_glue_repo(
        tmp_path_factory.mktemp("glue"),
        {
            "mrpc": {"train": mrpc_rows(64, seed=1), "validation": mrpc_rows(20, seed=2), "test": test_rows},
            "rte": {"train": mrpc_rows(12, seed=4), "validation": mrpc_rows(6, seed=5)},
        },
    )


def hub_overrides(tiny_overrides: list[str], **replace: str) -> list[str]:
    """``tiny_overrides`` without ``data.dir`` (so the data comes the Hub way), with some keys replaced."""
    kept = [item for item in tiny_overrides if item.split("=")[0] not in {"data.dir", *replace}]
    return kept + [f"{key}={value}" for key, value in replace.items()]


@pytest.fixture
def no_hub(monkeypatch):
    """Any attempt to reach the Hub fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the Hub was consulted")

    monkeypatch.setattr(loading, "hub_reachable", refuse)
    monkeypatch.setattr("mrpc_finetune.hub.hub_reachable", refuse)


@pytest.mark.slow  # the Hub route: training subprocesses
def test_local_glue_folder_trains_through_load_dataset(
    capsys, monkeypatch, no_hub, glue_repo, tiny_overrides, tmp_path
):
    import datasets

    calls = []
    load_dataset = datasets.load_dataset

    def spy(*args, **kwargs):
        loaded = load_dataset(*args, **kwargs)
        if args and args[0] == str(glue_repo):
            calls.append((args, kwargs, {split: ds.num_rows for split, ds in loaded.items()}))
        return loaded

    monkeypatch.setattr(datasets, "load_dataset", spy)
    overrides = hub_overrides(tiny_overrides, **{"data.hub_dataset": str(glue_repo), "train.max_steps": "4"})
    code = main(["train", "mrpc", *overrides])  # the Hub recipe: bert-base-uncased on nyu-mll/glue, model swapped
    out, err = capsys.readouterr()
    assert code == 0, err
    assert calls == [((str(glue_repo), "mrpc"), {}, {"train": 64, "validation": 20, "test": 10})]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["eval_rows"] == 20 and 0 <= metrics["eval_accuracy"] <= 1
    recipe = json.loads((tmp_path / "run" / "recipe.json").read_text())
    assert recipe["data"]["dir"] is None and recipe["data"]["hub_dataset"] == str(glue_repo)


def test_local_glue_folder_bad_inputs_are_one_line(capsys, no_hub, glue_repo, tiny_overrides, tmp_path):
    cases = [
        ({"data.hub_dataset": str(tmp_path / "absent")}, "no such folder"),
        ({"data.hub_dataset": str(glue_repo), "data.task": "cola"}, "cannot load config 'cola'"),
    ]
    for replace, message in cases:
        code = main(["train", "mrpc", *hub_overrides(tiny_overrides, **replace)])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("error: data.hub_dataset=") and err.count("\n") == 1, err
        assert message in err
        assert not (tmp_path / "run").exists()


def write_hub_cache_snapshot(cache: Path, repo_id: str, model_dir: Path) -> str:
    """``models--ORG--NAME/{blobs,snapshots/<commit>,refs/main}`` as ``huggingface_hub`` leaves a download:
    content-addressed blobs, the snapshot's files linking to them, refs/main naming the commit."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in sorted(model_dir.iterdir()):
        content = file.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(content).hexdigest()
        blob.write_bytes(content)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return commit


@pytest.mark.slow  # the Hub route: training subprocesses
def test_cached_hub_model_trains_offline(glue_repo, tiny_model_dir, tiny_overrides, tmp_path):
    """A user's cached download: HF_HUB_CACHE + HF_HUB_OFFLINE=1, ``model.name=ORG/NAME``, in a fresh process so
    that huggingface_hub and transformers read the variables as they start."""
    cache = tmp_path / "hub-cache"
    write_hub_cache_snapshot(cache, "tiny-org/tiny-bert", tiny_model_dir)
    env = os.environ | {"HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    overrides = hub_overrides(
        tiny_overrides,
        **{"model.name": "tiny-org/tiny-bert", "data.hub_dataset": str(glue_repo), "train.max_steps": "2"},
    )
    done = subprocess.run(
        [sys.executable, "-m", "mrpc_finetune", "train", "mrpc", *overrides], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "run"
    assert json.loads((run / "metrics.json").read_text())["eval_rows"] == 20
    assert json.loads((run / "model" / "config.json").read_text())["hidden_size"] == 32  # the cached tiny BERT

    missing = subprocess.run(
        [sys.executable, "-m", "mrpc_finetune", "train", "mrpc", *overrides, "model.name=tiny-org/not-downloaded"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1, missing.stderr
    assert "model.name=tiny-org/not-downloaded: the Hugging Face Hub cannot be reached" in missing.stderr
    assert "is not cached" in missing.stderr
