from __future__ import annotations

from transformers import TrainerCallback

from mrpc_finetune.train import guards, loop_sequence
from mrpc_finetune.train.precision import PrecisionProbe


class LogAtEachSaveAndEnd(TrainerCallback):
    """Log the training loss at every checkpoint and at the last step, so that the log history (saved in every
    checkpoint, restored by resume=true) holds each step's loss exactly once: see ``mean_train_loss``."""

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save or state.global_step >= state.max_steps:
            control.should_log = True


def mean_train_loss(log_history: list[dict], global_step: int) -> float:
    """The mean training loss over every step of the run, resumed or not. (The Trainer's own ``training_loss``
    averages only the steps since the last resume.) Each logged ``loss`` is the mean since the previous log."""
    total, previous = 0.0, 0
    for entry in sorted((e for e in log_history if "loss" in e), key=lambda e: e["step"]):
        total += entry["loss"] * (entry["step"] - previous)
        previous = entry["step"]
    return total / max(global_step, 1)


class TrackersCallback(TrainerCallback):
    """Every Trainer log line (training, evaluation, test) to the run's trackers, under the TensorBoard tags the
    other loops use (``train/loss``, ``eval/accuracy``, ``test/f1``); the main process alone writes."""

    TRAINER_ONLY = ("total_flos", "train_samples_per_second", "train_steps_per_second")
    """The Trainer's end-of-training throughput figures: the other loops have no such keys, so no loop logs them
    (``train_runtime`` and ``train_loss``, which every loop has, stay)."""

    def __init__(self, trackers):
        self.trackers = trackers

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            kept = {k: v for k, v in logs.items() if k not in self.TRAINER_ONLY}
            self.trackers.log(loop_sequence.tensorboard_scalars(kept), state.global_step)


class StopOnNonFiniteLoss(TrainerCallback):
    """Check every training forward pass's loss (``guards.check_finite_loss``) before backward and the optimizer
    step run, so a diverging run stops at once, with its weights and saved checkpoints still finite; and each
    evaluation during training (``guards.check_finite_evaluation``), which the Trainer runs before it saves."""

    def __init__(self, lr: float):
        self.lr = lr
        self.handle = None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        def check(module, inputs, outputs):
            loss = getattr(outputs, "loss", None)
            if module.training and loss is not None:
                guards.check_finite_loss(loss, state.global_step + 1, self.lr)

        self.handle = model.register_forward_hook(check)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        guards.check_finite_evaluation(metrics or {}, state.global_step, self.lr)

    def on_train_end(self, args, state, control, **kwargs):
        if self.handle is not None:
            self.handle.remove()


class EvaluationHook(TrainerCallback):
    """Hand each evaluation's metrics to ``on_evaluate(metrics, step)`` on the main process. With two dev splits
    (MNLI) the Trainer evaluates them one after the other: their metrics are handed over together."""

    def __init__(self, report, prefixes: list[str]):
        self.report, self.prefixes, self.pending = report, prefixes, {}

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not state.is_world_process_zero:
            return
        self.pending.update(metrics or {})
        if all(f"{prefix}_loss" in self.pending for prefix in self.prefixes):
            metrics, self.pending = self.pending, {}
            self.report(metrics, state.global_step)


class ConfirmPrecision(TrainerCallback):
    """After the first training step, ``ran`` is the precision the forward pass used (``train/precision.py``); the
    run stops with one line if that is not the one asked for, rather than label fp32 training bf16 or fp16."""

    def __init__(self, asked: str):
        self.ran, self.probe = asked, None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.probe = PrecisionProbe(model)

    def on_step_end(self, args, state, control, **kwargs):
        if self.probe is not None and self.probe.pending:
            self.ran = self.probe.confirm(self.ran, "trainer")
