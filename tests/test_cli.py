"""The command line: list, show, inspect, train, eval; bad input is one line on stderr and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mrpc_finetune.cli import main
from mrpc_finetune.hardware import pad_to_multiple_of, select_precision

from .conftest import SHARED_MRPC, requires_shared_mrpc


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    assert "mrpc " in out and "mrpc_minilm" in out


def test_show_says_what_each_key_means(capsys):
    code, out, _ = run_cli(capsys, "show", "mrpc_minilm")
    assert code == 0
    lines = out.splitlines()
    lr = next(i for i, line in enumerate(lines) if line.strip().startswith("lr = "))
    assert lines[lr + 1].strip() == "# Peak learning rate of AdamW."


def test_show_prints_recipe_and_training_arguments(capsys):
    code, out, _ = run_cli(capsys, "show", "mrpc", "train.lr=3e-5", "data.dir=/data")
    assert code == 0
    assert "lr = 3e-05" in out and "dir = '/data'" in out
    assert "TrainingArguments" in out and "learning_rate = 3e-05" in out and "metric_for_best_model = 'accuracy'" in out


def test_show_warns_about_remote_code(capsys):
    code, _, err = run_cli(capsys, "show", "mrpc", "model.trust_remote_code=true")
    assert code == 0 and err.startswith("WARNING") and "runs Python code" in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["show", "mrpc", "train.lrr=1"], "error: unknown recipe key 'train.lrr'; did you mean train.lr?"),
        (["show", "mrpc", "train.batch_size=big"], "error: train.batch_size: expected int, got 'big'"),
        (["show", "nosuchrecipe"], "error: unknown recipe 'nosuchrecipe'; known recipes:"),
    ],
)
def test_bad_input_is_one_line(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.startswith(message) and err.count("\n") == 1


def test_module_entry_point_has_no_traceback():
    result = subprocess.run(
        [sys.executable, "-m", "mrpc_finetune", "train", "mrpc", "train.lr=x"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: train.lr: expected float, got 'x'"


def test_hub_unreachable_fails_fast_and_leaves_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "mrpc", f"output_dir={run_dir}")
    assert code == 2
    assert "Hub cannot be reached" in err and "model.name=" in err and "data.dir=" in err
    assert err.count("\n") == 1
    assert not run_dir.exists()


def test_inspect_on_fixture(capsys, tiny_mrpc_dir, tiny_model_dir):
    code, out, _ = run_cli(
        capsys,
        "inspect",
        "mrpc_minilm",
        f"model.name={tiny_model_dir}",
        "--n",
        "4",
        f"data.dir={tiny_mrpc_dir}",
        "--split",
        "train",
        "--json",
    )
    assert code == 0
    report = json.loads(out.strip().splitlines()[-1])
    assert report["rows"] == 64 and len(report["first_lengths"]) == 4
    assert report["batch_shapes"]["input_ids"] == [4, max(report["first_lengths"])]
    assert 0 < report["padding_efficiency"] <= 1


@requires_shared_mrpc
def test_inspect_reference_batch(capsys):
    code, out, _ = run_cli(capsys, "inspect", "mrpc_minilm", f"data.dir={SHARED_MRPC}", "--n", "8", "--json")
    assert code == 0
    report = json.loads(out.strip().splitlines()[-1])
    assert report["rows"] == 3668
    assert report["first_lengths"] == [50, 59, 47, 67, 59, 50, 62, 32]
    multiple = pad_to_multiple_of(select_precision("auto")) or 1  # 72 on a CUDA host (bf16/fp16 pad to 8), 67 on CPU
    width = -(-67 // multiple) * multiple
    assert report["batch_shapes"] == {
        "input_ids": [8, width],
        "token_type_ids": [8, width],
        "attention_mask": [8, width],
        "labels": [8],
    }


def test_train_then_eval(capsys, tiny_overrides, tmp_path):
    code, out, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, "train.max_steps=3")
    assert code == 0, err
    assert "done: eval_accuracy=" in out and "tensorboard --logdir" in out
    run_dir = tmp_path / "run"
    trained = json.loads((run_dir / "metrics.json").read_text())

    code, again, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, "train.max_steps=3")
    assert code == 2 and "already holds a run" in err and "resume=true" in err and "overwrite=true" in err

    code, out, err = run_cli(capsys, "eval", str(run_dir))
    assert code == 0, err
    evaluated = json.loads(out)
    assert evaluated["eval_rows"] == 20
    assert evaluated["eval_accuracy"] == pytest.approx(trained["eval_accuracy"])
    assert evaluated["eval_f1"] == pytest.approx(trained["eval_f1"])
    assert sum(map(sum, evaluated["confusion_matrix"]["rows_true_columns_predicted"])) == 20
