"""The loop contract's precision axis: bf16 and fp16 run, on the CPU too, and a run says the precision that ran.

fp32, bf16 and fp16 x the three loops on the tiny model. On a CPU the Trainer and the Accelerate loop refuse fp16
(Accelerate makes no fp16 autocast or GradScaler there): the test asserts that one line. Every other pair trains, and
a patched ``nn.Linear.forward`` (not our own probe) sees the forward pass in the asked dtype. One pair per loop is in
the fast suite; the rest, and the subprocess checks, are ``slow``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from mrpc_finetune.errors import UserError
from mrpc_finetune.inference.evaluation import evaluate_run
from mrpc_finetune.train import train_with_loop
from mrpc_finetune.train.precision import PrecisionProbe

from .conftest import single_torch_thread
from .test_loop_contract import (
    LOOPS,
    ON_CPU,
    keyword_recipe,
    reset_accelerate_state,
    run_cli,
    train,
    weights,
)

FIRST_LOSS_TOLERANCE = 2e-2
"""How far the first logged losses of a bf16/fp16 run may sit from fp32's (bf16 keeps 8 bits of mantissa: about
3e-3 relative per rounding; the tiny model's loss is ~0.69)."""

FAST = {("trainer", "bf16"), ("accelerate", "bf16"), ("torch", "fp16")}
"""One combination per loop in ``make test``; ``make test-all`` runs the whole matrix."""


def refused(loop: str, precision: str) -> bool:
    """fp16 on a CPU in the loops that run on Accelerate (hardware.CPU_FP16_LOOPS)."""
    return ON_CPU and precision == "fp16" and loop != "torch"


def matrix() -> list:
    return [
        pytest.param(loop, precision, marks=() if (loop, precision) in FAST else pytest.mark.slow)
        for loop in LOOPS
        for precision in ("bf16", "fp16")
    ]


@pytest.fixture
def one_thread():
    reset_accelerate_state()
    with single_torch_thread():
        yield
    reset_accelerate_state()


@pytest.fixture
def forward_dtypes(monkeypatch) -> list[torch.dtype]:
    """The output dtype of every ``nn.Linear`` call that builds a graph for backward (training forward passes)."""
    seen: list[torch.dtype] = []
    original = torch.nn.Linear.forward

    def forward(self, x):
        out = original(self, x)
        if torch.is_grad_enabled():
            seen.append(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.Linear, "forward", forward)
    return seen


def tensorboard_scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of one TensorBoard tag of the run, in step order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points = []
    for events in run.rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            points += [(event.step, event.value) for event in accumulator.Scalars(tag)]
    return sorted(points)


def first_losses(run: Path, steps: int = 3) -> list[float]:
    """``train/loss`` of the first logged steps, from the run's TensorBoard events."""
    return [value for _, value in tensorboard_scalars(run, "train/loss")[:steps]]


@pytest.mark.parametrize(("loop", "precision"), matrix())
def test_each_loop_runs_and_labels_mixed_precision(
    loop, precision, one_thread, forward_dtypes, tiny_model_dir, keyword_dir, tmp_path, capsys
):
    out = tmp_path / "run"
    recipe = keyword_recipe(loop, tiny_model_dir, keyword_dir, out, f"train.precision={precision}", "train.epochs=4")
    if refused(loop, precision):
        with pytest.raises(UserError, match=f"^train.precision=fp16 with loop={loop} on a CPU: Accelerate runs fp16"):
            train_with_loop(recipe)
        assert not out.exists()  # refused before the run folder
        return
    metrics, _ = train(recipe)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert forward_dtypes and set(forward_dtypes) == {dtype}  # every training matmul ran in the asked dtype
    assert metrics["precision"] == precision
    assert json.loads((out / "metrics.json").read_text())["precision"] == precision
    assert f"| precision | {precision} |" in (out / "model" / "README.md").read_text()
    assert metrics["eval_accuracy"] >= 0.9  # it learns, as in fp32 (test_loop_contract.test_it_learns)
    if ON_CPU:
        assert f"note: train.precision={precision} on a CPU" in capsys.readouterr().err
    # The saved model is fp32 (autocast keeps fp32 master weights) and loads the plain way.
    assert {t.dtype for t in weights(out / "model").values()} == {torch.float32}
    # Its first losses stay close to an fp32 run of the same steps.
    reference = tmp_path / "fp32"
    reset_accelerate_state()
    train(keyword_recipe(loop, tiny_model_dir, keyword_dir, reference, "train.precision=fp32", "train.max_steps=7"))
    mixed, full = first_losses(out), first_losses(reference)
    assert len(mixed) == len(full) == 3
    assert all(abs(a - b) <= FIRST_LOSS_TOLERANCE for a, b in zip(mixed, full, strict=True)), (mixed, full)
    # Evaluation under mixed precision predicts what an fp32 evaluation of the same weights predicts.
    fp32_eval = evaluate_run(out)  # `mrpc-finetune eval`: fp32, no autocast
    assert fp32_eval["eval_accuracy"] == metrics["eval_accuracy"]
    assert math.isclose(fp32_eval["eval_loss"], metrics["eval_loss"], abs_tol=FIRST_LOSS_TOLERANCE)


# --- fp16: an overflow is skipped, a nan still stops -------------------------------------------------------------


def test_fp16_overflow_is_skipped_not_a_nan_stop(
    one_thread, tiny_model_dir, keyword_dir, tmp_path, monkeypatch, capsys
):
    """A loss scale of 2^40 overflows the first step's fp16 gradients: the scaler skips that update and falls to
    2^10 (backoff 2^-30), the learning-rate schedule does not advance, and the run goes on to its last step."""
    original = torch.amp.GradScaler.__init__

    def huge_first_scale(self, *args, **kwargs):
        original(self, *args, **{**kwargs, "init_scale": 2.0**40, "backoff_factor": 2.0**-30})

    monkeypatch.setattr(torch.amp.GradScaler, "__init__", huge_first_scale)
    out = tmp_path / "run"
    extra = ["train.precision=fp16", "train.logging_steps=1", "train.max_steps=6", "eval.strategy=no"]
    recipe = keyword_recipe("torch", tiny_model_dir, keyword_dir, out, *extra)
    metrics, _ = train(recipe)
    err = capsys.readouterr().err
    assert "step 1: fp16 gradients overflowed; the scaler skipped this update" in err
    assert "step 2: fp16 gradients overflowed" not in err
    assert [step for step, _ in tensorboard_scalars(out, "train/skipped_step")] == [1]
    scales = dict(tensorboard_scalars(out, "train/loss_scale"))
    assert scales[1] == 2.0**10 and scales[2] == 2.0**10
    rates = dict(tensorboard_scalars(out, "train/learning_rate"))
    assert rates[2] == rates[1] and rates[3] > rates[2]  # the skipped step left the warm-up where it was
    assert metrics["global_step"] == 6 and math.isfinite(metrics["eval_loss"]) and metrics["precision"] == "fp16"


@pytest.mark.slow  # the contract's nan test, under fp16 in the loop that runs it on a CPU
def test_nan_loss_still_stops_under_fp16(capsys, tiny_overrides, tiny_mrpc_dir, tmp_path, monkeypatch, one_thread):
    from .test_loop_contract import test_nan_loss_stops_with_exit_2_and_finite_checkpoints as nan_contract

    nan_contract("torch", capsys, [*tiny_overrides, "train.precision=fp16"], tiny_mrpc_dir, tmp_path, monkeypatch)


# --- the label comes from what ran ---------------------------------------------------------------------------------


def test_a_run_that_silently_ran_fp32_stops(one_thread, tiny_overrides, tmp_path, monkeypatch, capsys):
    """If the autocast never engages (here: the torch loop's autocast replaced by nothing), the run stops at its
    first step with one line instead of writing bf16 into metrics.json."""
    import contextlib

    from mrpc_finetune.train import torch_loop

    monkeypatch.setattr(torch_loop, "_autocast", lambda device, precision: contextlib.nullcontext)
    code, err = run_cli(capsys, "train", "mrpc_minilm", *tiny_overrides, "loop=torch", "train.precision=bf16")
    assert code == 2, err
    assert err.strip().splitlines()[-1] == (
        "error: train.precision: bf16 was asked for, but loop=torch's forward pass ran in fp32; "
        "the run stopped rather than report the wrong precision"
    )
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_probe_reads_the_forward_pass():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    probe = PrecisionProbe(model)
    with torch.no_grad():
        model(torch.ones(1, 4))  # evaluation: not what the probe reads
    assert probe.dtype is None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.ones(1, 4))
    assert probe.confirm("bf16", "torch") == "bf16" and not probe.pending
    fp32 = PrecisionProbe(model)
    model(torch.ones(1, 4))
    with pytest.raises(UserError, match="fp16 was asked for, but loop=accelerate's forward pass ran in fp32"):
        fp32.confirm("fp16", "accelerate")
