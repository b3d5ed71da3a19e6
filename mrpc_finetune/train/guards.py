"""Checks a training loop runs on every step; each loop (Trainer, plain PyTorch, Accelerate) calls the same ones.

A non-finite training loss is caught on the forward pass, before backward and the optimizer step, so the weights
in memory and every checkpoint already on disk stay finite. A non-finite loss on an evaluation during training
stops the run before that evaluation's checkpoint is saved, so every checkpoint kept also evaluated finite: the
last one is a good one to go back to.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from mrpc_finetune.errors import UserError


class NonFiniteLossError(UserError):
    """The training (or an evaluation) loss became nan or inf; the message names the step and what to try."""

    def __init__(self, step: int, value: float, lr: float | None = None, evaluated: str | None = None):
        self.step, self.value = step, value
        lower = f"a lower train.lr (now {lr:g})" if lr is not None else "a lower train.lr"
        if evaluated:
            what = f"the evaluation loss ({evaluated}) is {value} at step {step} (the run stopped before saving that "
            what += "checkpoint, so every checkpoint kept evaluates finite)"
        else:
            what = f"the training loss is {value} at step {step} (the run stopped before that update, so its "
            what += "weights and checkpoints stay finite)"
        super().__init__(f"{what}; try {lower}, more warm-up (train.warmup_ratio) or train.precision=fp32")


def check_finite_loss(loss, step: int, lr: float | None = None) -> None:
    """Raise :class:`NonFiniteLossError` when ``loss`` (a tensor or a number) is nan or inf.

    For a tensor this reads one number back from the device (a sync), as the Trainer's own nan filter does.
    Call it right after the forward pass: ``check_finite_loss(outputs.loss, global_step + 1, lr)``.
    """
    value = float(loss.detach().float().sum()) if hasattr(loss, "detach") else float(loss)
    if not math.isfinite(value):
        raise NonFiniteLossError(step, value, lr)


def check_finite_evaluation(metrics: Mapping, step: int, lr: float | None = None) -> None:
    """Raise :class:`NonFiniteLossError` when an evaluation's loss (``eval_loss``, or one per dev split) is nan or
    inf. Call it after each evaluation during training, before its checkpoint is saved."""
    for key, value in metrics.items():
        if key.endswith("loss") and isinstance(value, (int, float)) and not math.isfinite(value):
            raise NonFiniteLossError(step, value, lr, evaluated=key)


def describe_stop(error: NonFiniteLossError, last_checkpoint) -> str:
    """The one-line message a loop shows after a non-finite loss stopped it, naming what was kept."""
    if last_checkpoint is None:
        return f"{error}; no checkpoint was saved before it: start again with overwrite=true"
    return (
        f"{error}; the last good checkpoint is {last_checkpoint}: start a new run from it with "
        f"model.name={last_checkpoint}, or again from scratch with overwrite=true"
    )
