"""push: every error path for real (one line, exit 2, nothing uploaded); the upload itself against stand-ins for
HfApi's two calls, since no Hub is reachable here."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import HfApi, constants

from mrpc_finetune.cli import main

from .conftest import free_port

TOKEN = "hf_FAKEtokenFORtestsONLY1234"


@pytest.fixture
def hub_calls(monkeypatch, tmp_path):
    """HfApi.create_repo / upload_folder replaced by recorders; no token in the environment or on disk."""
    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        calls.append(("upload_folder", kwargs["repo_id"], kwargs))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    return calls


@pytest.fixture
def finished_run(tmp_path):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "recipe.json").write_text("{}")
    (run / "metrics.json").write_text(json.dumps({"eval_accuracy": 0.8}))
    (run / "model" / "config.json").write_text("{}")
    (run / "model" / "README.md").write_text("---\nlibrary_name: transformers\n---\n# card\n")
    return run


def push(capsys, *args) -> tuple[int, str, str]:
    code = main(["push", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda run: (run / "recipe.json").unlink(), "not a run directory"),
        (lambda run: (run / "metrics.json").unlink(), "has not finished"),
        (lambda run: (run / "model" / "config.json").unlink(), "has not finished"),
        (lambda run: (run / "model" / "README.md").unlink(), "no model card"),
    ],
)
def test_run_that_cannot_be_pushed(finished_run, hub_calls, capsys, monkeypatch, breakage, message):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    breakage(finished_run)
    code, out, err = push(capsys, finished_run, "me/model")
    assert code == 2 and message in err and err.count("\n") == 1 and hub_calls == []


def test_bad_repo_id(finished_run, hub_calls, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    code, _, err = push(capsys, finished_run, "me/not a repo")
    assert code == 2 and "is not a Hub repo id" in err and err.count("\n") == 1 and hub_calls == []


def test_no_token(finished_run, hub_calls, capsys):
    code, _, err = push(capsys, finished_run, "me/model")
    assert code == 2 and "no Hugging Face token" in err and "hf auth login" in err and hub_calls == []


def test_hub_unreachable_and_the_token_stays_unprinted(finished_run, hub_calls, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    code, out, err = push(capsys, finished_run, "me/model")
    assert code == 2 and "cannot be reached" in err and hub_calls == []
    assert TOKEN not in out + err


def test_upload_of_the_model_folder(finished_run, hub_calls, capsys, monkeypatch):
    from mrpc_finetune import hub

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    code, out, err = push(capsys, finished_run, "me/model", "--private")
    assert code == 0, err
    (create, upload) = hub_calls
    assert create[:2] == ("create_repo", "me/model")
    assert create[2] == {"repo_type": "model", "private": True, "exist_ok": True}
    assert upload[:2] == ("upload_folder", "me/model") and upload[2]["folder_path"] == str(finished_run / "model")
    assert "https://huggingface.co/me/model" in out and TOKEN not in out + err


def test_failed_upload_is_one_line(finished_run, hub_calls, capsys, monkeypatch):
    from mrpc_finetune import hub

    def refuse(self, **kwargs):
        raise OSError("403 Forbidden: you have no write access to me/model\nrequest id: 42")

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(HfApi, "upload_folder", refuse)
    code, _, err = push(capsys, finished_run, "me/model")
    assert (
        code == 2
        and err == "error: push me/model: the upload failed (403 Forbidden: you have no write access to me/model)\n"
    )


@pytest.fixture
def mean_pooled_run(finished_run):
    """A finished run whose model is ``model.pooler=mean``'s custom architecture, saved as training saves it."""
    from mrpc_finetune.mean_pooling.modeling_mean_pooled_bert import (
        MeanPooledBertConfig,
        MeanPooledBertForSequenceClassification,
    )

    config = MeanPooledBertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    MeanPooledBertForSequenceClassification(config).save_pretrained(finished_run / "model")
    return finished_run


def test_a_mean_pooled_model_is_pushed_with_its_code(mean_pooled_run, hub_calls, capsys, monkeypatch):
    from mrpc_finetune import hub

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    code, _, err = push(capsys, mean_pooled_run, "me/model")
    assert code == 0, err
    folder = hub_calls[-1][2]["folder_path"]
    assert folder == str(mean_pooled_run / "model")
    assert (mean_pooled_run / "model" / "modeling_mean_pooled_bert.py").is_file()  # uploaded with the folder


def test_a_model_without_the_code_its_config_names_is_not_pushed(mean_pooled_run, hub_calls, capsys, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    (mean_pooled_run / "model" / "modeling_mean_pooled_bert.py").unlink()
    code, _, err = push(capsys, mean_pooled_run, "me/model")
    assert code == 2 and err.count("\n") == 1 and hub_calls == []
    assert "auto_map needs modeling_mean_pooled_bert.py, which is not in the folder" in err
