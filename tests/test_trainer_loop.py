"""What only the Trainer loop has: its length-bucket sampler hook, longest-first evaluation, predictions back in row
order, and the whole-run training loss. The loop contract (test_loop_contract.py) covers the rest."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mrpc_finetune.data import batching
from mrpc_finetune.inference.logits import predict_logits
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.train import callbacks, hf_adapter, trainer_loop
from mrpc_finetune.train.preparation import prepare


def test_trainer_batches_by_length_and_predicts_in_row_order(tiny_overrides, tmp_path):
    recipe = load_recipe("mrpc_minilm", tiny_overrides)
    prepared = prepare(recipe)
    widths = []

    def collate(rows):
        batch = prepared.collator(rows)
        widths.append(batch["input_ids"].shape[1])
        return batch

    validation = prepared.splits["validation"]
    trainer = hf_adapter.LengthBatchedTrainer(
        model=prepared.model,
        # On the CPU in fp32 on any host: what is checked is the row order, against CPU fp32 logits, to 1e-7.
        args=dataclasses.replace(
            trainer_loop.training_arguments(recipe, tmp_path / "checkpoints"), use_cpu=True, bf16=False, fp16=False
        ),
        train_dataset=prepared.splits["train"],
        eval_dataset=validation,
        data_collator=collate,
        processing_class=prepared.tokenizer,
    )
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, batching.LengthBucketSampler)
    assert (sampler.batch_size, sampler.seed, len(sampler)) == (8, recipe.seed, 64)

    output = trainer.predict(validation)
    assert len(widths) == 3 and widths == sorted(widths, reverse=True) and widths[0] > widths[-1]  # longest first
    one_by_one = predict_logits(prepared.model, validation, prepared.collator, batch_size=1, device="cpu")
    assert np.ptp(one_by_one, axis=0).max() > 1e-5  # rows differ by far more than the tolerance below
    np.testing.assert_allclose(output.predictions, one_by_one, rtol=0, atol=1e-7)  # back in row order
    assert output.label_ids.tolist() == list(validation["labels"])


def test_random_sampler_stays_the_trainers_own(tiny_overrides, tmp_path):
    recipe = load_recipe("mrpc_minilm", [*tiny_overrides, "train.sampler=random", "eval.strategy=no"])
    prepared = prepare(recipe, with_model=False)
    trainer = hf_adapter.LengthBatchedTrainer(
        model=torch.nn.Linear(1, 1),
        args=trainer_loop.training_arguments(recipe, tmp_path / "checkpoints"),
        train_dataset=prepared.splits["train"],
    )
    assert isinstance(trainer._get_train_sampler(), torch.utils.data.RandomSampler)


def test_mean_train_loss_covers_every_step_once_after_a_resume():
    # Logged at steps 1, 5 (mean of 2..5), 6 (a checkpoint) and 10 (the end): what a resumed run's history holds.
    history = [
        {"loss": 0.9, "step": 1},
        {"loss": 0.7, "step": 5},
        {"eval_loss": 0.5, "step": 5},
        {"loss": 0.6, "step": 6},
        {"loss": 0.4, "step": 10},
    ]
    assert callbacks.mean_train_loss(history, 10) == pytest.approx((0.9 + 0.7 * 4 + 0.6 + 0.4 * 4) / 10)
