"""The precision that ran, read from the forward pass, so that no run reports bf16 or fp16 while it trained in fp32.

A flag that a library accepts is not a path that ran (Accelerate, for one, drops fp16 on a CPU without a word).
``PrecisionProbe`` hooks the model's first ``nn.Linear`` and reads the dtype of its output in the first training
forward pass: under bf16/fp16 autocast that is bf16/fp16. Every loop confirms it after its first optimizer step;
``metrics.json`` and the model card take their ``precision`` from it.
"""

from __future__ import annotations

import sys

import torch

from mrpc_finetune.errors import UserError

LABELS = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


class PrecisionProbe:
    """Records the dtype of the first training forward pass through the model's first linear layer."""

    def __init__(self, model: torch.nn.Module):
        self.dtype: torch.dtype | None = None
        first_linear = next((m for m in model.modules() if isinstance(m, torch.nn.Linear)), None)
        self._hook = first_linear.register_forward_hook(self._record) if first_linear is not None else None

    def _record(self, module, inputs, output) -> None:
        if self.dtype is None and torch.is_grad_enabled() and isinstance(output, torch.Tensor):
            self.dtype = output.dtype

    @property
    def pending(self) -> bool:
        """True until ``confirm`` has run (and removed the hook)."""
        return self._hook is not None

    def confirm(self, asked: str, loop: str) -> str:
        """The label of what ran; stops the run (exit 2) if it is not the precision asked for."""
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self.dtype is None:  # no linear layer, or no training step yet: nothing to contradict the recipe
            return asked
        ran = LABELS.get(self.dtype, str(self.dtype).removeprefix("torch."))
        if ran != asked:
            raise UserError(
                f"train.precision: {asked} was asked for, but loop={loop}'s forward pass ran in {ran}; "
                "the run stopped rather than report the wrong precision"
            )
        return ran


def report_skipped_step(trackers, step: int, loss_scale: float, is_main: bool) -> None:
    """An fp16 step whose gradients overflowed: the scaler skipped the update and lowered its scale. Not a nan stop:
    the weights and the learning-rate schedule stay where they were, and the run goes on."""
    if is_main:
        print(
            f"step {step}: fp16 gradients overflowed; the scaler skipped this update (weights and learning-rate "
            f"schedule unchanged) and lowered the loss scale to {loss_scale:g}",
            file=sys.stderr,
        )
    trackers.log({"train/skipped_step": 1.0}, step)
