from __future__ import annotations

import numpy as np
from transformers import Trainer

from mrpc_finetune.data import batching
from mrpc_finetune.train import loop_parts


class LengthBatchedTrainer(Trainer):
    """The Trainer with our batch order, as transformers offers no hook for a custom sampler.

    ``train_sampling_strategy="group_by_length"`` (set by ``training_arguments`` from ``train.sampler``) trains on
    ``batching.LengthBucketSampler`` batches instead of transformers' ``LengthGroupedSampler`` (whose first batch is
    always the longest); ``random`` stays the Trainer's own shuffling. Evaluation and prediction run longest rows
    first for little padding (metrics do not depend on row order); ``predict`` puts its outputs back in row order.
    """

    def __init__(self, *args, train_config=None, **kwargs):
        self.train_config = train_config  # the recipe's train section: the optimizer every loop builds
        super().__init__(*args, **kwargs)

    def create_optimizer(self, model=None):
        """``loop_parts.build_optimizer``, as in the other loops (layer-wise learning rates included)."""
        if self.optimizer is None and self.train_config is not None:
            self.optimizer = loop_parts.build_optimizer(self.model if model is None else model, self.train_config)
        return super().create_optimizer(model)

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
