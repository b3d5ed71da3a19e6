"""No URL's password reaches a file or the screen: ``errors.redact`` on commands (run_info.json, model cards, hence
``push``), logs, error messages and ``search.json``."""

from __future__ import annotations

import json

import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.errors import redact
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.run import tracker_backends
from mrpc_finetune.run.model_card import write_model_card
from mrpc_finetune.run.provenance import command_line, run_info

PASSWORD = "hunter2-Xy9"


@pytest.mark.parametrize(
    "text, redacted",
    [
        ("postgresql://me:hunter2@db:5432/mlflow", "postgresql://me:***@db:5432/mlflow"),
        ("sqlite:////x/mlflow.db", "sqlite:////x/mlflow.db"),
        ("https://user@host/x", "https://user@host/x"),
        ("--storage=postgresql+psycopg://u:p@ss@h/db x", "--storage=postgresql+psycopg://u:***@h/db x"),
        ("a 'mysql://u:pw@h/d' and redis://:pw@h:6379", "a 'mysql://u:***@h/d' and redis://:***@h:6379"),
        ("http://h/x?user=u&password=abc&y=1", "http://h/x?user=u&password=***&y=1"),
    ],
)
def test_redact_hides_the_password_of_every_url(text, redacted):
    assert redact(text) == redacted
    assert tracker_backends.redact is redact  # one function for trackers, search, provenance and the CLI


def test_run_info_and_model_card_of_a_command_with_a_url_hold_no_password(tmp_path, tiny_mrpc_dir):
    url = f"postgresql://searcher:{PASSWORD}@db.example:5432/optuna"
    argv = ["mrpc-finetune", "search", "mrpc_minilm", "--storage", url, f"--storage={url}", "--trials", "2"]
    recipe = load_recipe("mrpc_minilm", [f"data.dir={tiny_mrpc_dir}", f"output_dir={tmp_path / 'run'}"])
    info = run_info(recipe, num_processes=1, precision="fp32", argv=argv)
    assert "postgresql://searcher:***@db.example:5432/optuna" in info["command"]
    (tmp_path / "model").mkdir()
    metrics = {"eval_accuracy": 0.8, "eval_f1": 0.85, "eval_rows": 20, "global_step": 8}
    card = write_model_card(tmp_path / "model", recipe=recipe, metrics=metrics, run_info=info)
    (tmp_path / "run_info.json").write_text(json.dumps(info))
    assert "searcher:***@db.example" in card.read_text()
    assert [p for p in tmp_path.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()] == []
    assert PASSWORD not in command_line([*argv, f"train.report_to=postgresql://u:{PASSWORD}@h/db"])


def test_an_error_message_with_a_url_shows_no_password(capsys):
    code = main(["search", "mrpc_minilm", "--trials", "1", "--storage", f"postgresql://u:{PASSWORD}@h:port/db"])
    _, err = capsys.readouterr()
    assert code == 2 and "postgresql://u:***@h:port/db" in err and PASSWORD not in err
