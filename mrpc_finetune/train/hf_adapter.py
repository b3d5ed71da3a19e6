"""Everything of transformers' that is not its public API and that we call or override, in one place.

The Trainer offers no hook for a custom batch order, so ``LengthBatchedTrainer`` overrides five of its methods
(four private); the other loops log, time, decay weights and switch TF32 on as the Trainer does through four of its
helper functions outside its public API. A transformers release may
rename or reshape any of these: ``incompatibilities()`` lists what no longer matches, and
``tests/test_hf_adapter.py`` fails on it by name, before a loop misbehaves in silence.
"""

from __future__ import annotations

import inspect

import numpy as np
from transformers import Trainer

from mrpc_finetune.data import batching


class LengthBatchedTrainer(Trainer):
    """The Trainer with our batch order, as transformers offers no hook for a custom sampler.

    ``train_sampling_strategy="group_by_length"`` (set by ``training_arguments`` from ``train.sampler``) trains on
    ``batching.LengthBucketSampler`` batches instead of transformers' ``LengthGroupedSampler`` (whose first batch is
    always the longest); ``random`` stays the Trainer's own shuffling. Evaluation and prediction run longest rows
    first for little padding (metrics do not depend on row order); ``predict`` puts its outputs back in row order.
    """

    def __init__(self, *args, optimizer_factory=None, **kwargs):
        self.optimizer_factory = optimizer_factory  # model -> the optimizer every loop builds (loop_parts)
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        """``optimizer_factory(model)``, as in the other loops (layer-wise learning rates included)."""
        if self.optimizer is None and self.optimizer_factory is not None:
            self.optimizer = self.optimizer_factory(self.model if model is None else model)
        return super().create_optimizer(model)

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Training log lines carry fp16's loss scale, as the other loops log it (Accelerate's GradScaler)."""
        scaler = getattr(self.accelerator, "scaler", None)
        if scaler is not None and "loss" in logs:
            logs = {**logs, "loss_scale": scaler.get_scale()}
        super().log(logs, start_time)

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or not _has_input_ids(dataset):
            return super()._get_train_sampler(train_dataset)
        seed = self.args.seed if self.args.data_seed is None else self.args.data_seed
        return batching.make_train_sampler(
            batching.token_lengths(dataset), self.args.train_batch_size, "group_by_length", seed
        )

    def _get_eval_sampler(self, eval_dataset):
        if not _has_input_ids(eval_dataset):
            return super()._get_eval_sampler(eval_dataset)
        return batching.length_sorted_order(batching.token_lengths(eval_dataset))

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Logits and labels only: ``compute_metrics`` computes the loss from all gathered rows (metrics.py)."""
        loss, logits, labels = super().prediction_step(model, inputs, prediction_loss_only, ignore_keys)
        return (loss, logits, labels) if prediction_loss_only else (None, logits, labels)

    def predict(self, test_dataset, ignore_keys=None, metric_key_prefix: str = "test"):
        output = super().predict(test_dataset, ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        if not _has_input_ids(test_dataset):
            return output
        order = batching.length_sorted_order(batching.token_lengths(test_dataset))
        return output._replace(
            predictions=_in_row_order(output.predictions, order), label_ids=_in_row_order(output.label_ids, order)
        )


def _has_input_ids(dataset) -> bool:
    import datasets

    return isinstance(dataset, datasets.Dataset) and "input_ids" in dataset.column_names


def _in_row_order(values, order: list[int]):
    """Undo a permutation: ``values[k]`` belongs to row ``order[k]``; tuples of arrays (several outputs) too."""
    if values is None:
        return None
    if isinstance(values, (tuple, list)):
        return type(values)(_in_row_order(v, order) for v in values)
    restored = np.empty_like(values)
    restored[order] = values
    return restored


OVERRIDDEN = {
    "_get_train_sampler": ("self", "train_dataset"),
    "_get_eval_sampler": ("self", "eval_dataset"),
    "prediction_step": ("self", "model", "inputs", "prediction_loss_only", "ignore_keys"),
    "predict": ("self", "test_dataset", "ignore_keys", "metric_key_prefix"),
    "create_optimizer": ("self", "model"),
}
"""Trainer methods ``LengthBatchedTrainer`` overrides, with the parameters it relies on, in order."""

HELPERS = {
    "transformers.trainer_utils.speed_metrics": ("split", "start_time", "num_samples", "num_steps"),
    "transformers.integrations.integration_utils.rewrite_logs": ("d",),
    "transformers.trainer_pt_utils.get_parameter_names": ("model", "forbidden_layer_types", "forbidden_layer_names"),
    "transformers.utils.import_utils.enable_tf32": ("enable",),
}
"""Functions outside transformers' top-level API that the loops call, with the parameters they pass."""


def incompatibilities() -> list[str]:
    """What this transformers no longer offers as ``OVERRIDDEN`` and ``HELPERS`` expect; empty when all match."""
    import importlib

    problems = []
    for name, expected in OVERRIDDEN.items():
        method = getattr(Trainer, name, None)
        problems += _check(f"Trainer.{name}", method, expected)
    for path, expected in HELPERS.items():
        module_name, _, name = path.rpartition(".")
        try:
            function = getattr(importlib.import_module(module_name), name, None)
        except ImportError:
            function = None
        problems += _check(path, function, expected)
    return problems


def _check(label: str, function, expected: tuple[str, ...]) -> list[str]:
    if function is None:
        return [f"{label}: gone"]
    parameters = tuple(inspect.signature(function).parameters)[: len(expected)]
    return [] if parameters == expected else [f"{label}: parameters {parameters}, expected {expected}"]


def speed_metrics(prefix: str, started: float, *, num_samples: int, num_steps: int) -> dict[str, float]:
    """``<prefix>_runtime``, ``_samples_per_second`` and ``_steps_per_second``, as the Trainer computes them."""
    from transformers.trainer_utils import speed_metrics as trainer_speed_metrics

    return trainer_speed_metrics(prefix, started, num_samples=num_samples, num_steps=num_steps)


def tensorboard_tags(logs: dict[str, float]) -> dict[str, float]:
    """Log keys as the Trainer's TensorBoard tags: ``eval_f1`` -> ``eval/f1``, ``loss`` -> ``train/loss``."""
    from transformers.integrations.integration_utils import rewrite_logs

    return rewrite_logs(logs)


def decayed_parameter_names(model, no_decay_patterns: list[str]) -> list[str]:
    """The parameters the Trainer applies weight decay to: all but LayerNorm and names matching the patterns."""
    import torch
    from transformers.trainer_pt_utils import get_parameter_names

    return get_parameter_names(model, [torch.nn.LayerNorm], no_decay_patterns)


def enable_tf32() -> None:
    """TF32 matmuls the way the Trainer switches them on (``tf32=True``)."""
    from transformers.utils.import_utils import enable_tf32 as trainer_enable_tf32

    trainer_enable_tf32(True)
