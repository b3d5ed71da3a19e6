"""Parts the plain PyTorch loop and the Accelerate loop build from (mirroring the Trainer): optimizer groups, the
schedule, the step plan, the loop's resumable state, each process's share of the batches, checkpoint bookkeeping,
and the torch loop's view of its processes. The steps they take with these parts are in ``loop_sequence.py``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from mrpc_finetune import hardware
from mrpc_finetune.data import batching
from mrpc_finetune.recipe.schema import EvalConfig, Recipe, TrainConfig
from mrpc_finetune.run import rundir
from mrpc_finetune.train import hf_adapter

NO_DECAY_PATTERNS = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
"""Parameter names kept free of weight decay, the same patterns the Trainer uses."""


def enable_tf32_if_supported() -> None:
    """TF32 matmuls on Ampere and newer (fp32 range, a 10-bit mantissa, several times the speed), as the Trainer."""
    if hardware.use_tf32():
        hf_adapter.enable_tf32()


LAYER_INDEX = re.compile(r"\.layers?\.(\d+)\.")
"""Finds encoder layer ``i`` in a parameter name: ``bert.encoder.layer.3.attention...``."""


def layer_depth(name: str, num_layers: int) -> int:
    """0 for the embeddings, ``i + 1`` for encoder layer ``i``, ``num_layers + 1`` for what sits on top of them."""
    if match := LAYER_INDEX.search(name):
        return int(match.group(1)) + 1
    return 0 if "embeddings" in name else num_layers + 1


def build_optimizer(model: torch.nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW for every loop (the Trainer's ``create_optimizer`` calls it too): weight decay on every weight except
    biases and LayerNorm parameters, as the Trainer does, and with ``train.layer_lr_decay`` < 1 a learning rate
    per layer, ``lr * decay**k`` for the layer ``k`` below the top. The first group is the top one, whose learning
    rate the logs show."""
    decayed = set(hf_adapter.decayed_parameter_names(model, NO_DECAY_PATTERNS))
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    num_layers = max((layer_depth(name, 0) for name, _ in trainable), default=0)
    groups: dict[tuple[int, bool], dict] = {}
    for name, parameter in trainable:
        below_top = num_layers + 1 - layer_depth(name, num_layers) if train.layer_lr_decay < 1 else 0
        group = groups.setdefault(
            (below_top, name in decayed),
            {
                "params": [],
                "weight_decay": train.weight_decay if name in decayed else 0.0,
                "lr": train.lr * train.layer_lr_decay**below_top,
            },
        )
        group["params"].append(parameter)
    return torch.optim.AdamW([groups[key] for key in sorted(groups, key=lambda k: (k[0], not k[1]))], lr=train.lr)


def build_scheduler(optimizer, train: TrainConfig, total_steps: int, processes: int = 1):
    """The recipe's schedule with ``ceil(warmup_ratio * total_steps)`` warm-up steps, like the Trainer.

    ``processes``: Accelerate's prepared scheduler advances once per process on every optimizer step,
    so it is built for ``processes`` times as many steps to keep the same curve per optimizer step.
    """
    from transformers import get_scheduler

    warmup = math.ceil(total_steps * train.warmup_ratio)
    return get_scheduler(
        train.lr_scheduler,
        optimizer,
        num_warmup_steps=warmup * processes,
        num_training_steps=total_steps * processes,
    )


@dataclass(frozen=True)
class StepPlan:
    """How micro-batches become optimizer steps: the Trainer's arithmetic, including the short last window."""

    batches_per_epoch: int
    """Micro-batches one process sees per epoch."""
    grad_accum: int
    total_steps: int
    """Optimizer steps of the whole run (``train.max_steps``, or ``ceil(epochs * steps_per_epoch)``)."""

    @classmethod
    def from_recipe(cls, batches_per_epoch: int, train: TrainConfig) -> StepPlan:
        steps_per_epoch = max(math.ceil(batches_per_epoch / train.grad_accum), 1)
        total = train.max_steps if train.max_steps > 0 else math.ceil(train.epochs * steps_per_epoch)
        return cls(batches_per_epoch, train.grad_accum, total)

    def window_size(self, batch_index: int) -> int:
        """Micro-batches in the accumulation window holding ``batch_index``; the epoch's last one may be short."""
        start = batch_index - batch_index % self.grad_accum
        return min(self.grad_accum, self.batches_per_epoch - start)

    def ends_window(self, batch_index: int) -> bool:
        return (batch_index + 1) % self.grad_accum == 0 or batch_index + 1 == self.batches_per_epoch


def logs_now(train: TrainConfig, step: int, last: bool) -> bool:
    """The first step, every ``logging_steps`` and the last, like the Trainer with ``logging_first_step``."""
    return step == 1 or step % train.logging_steps == 0 or last


def evaluates_now(evaluation: EvalConfig, step: int, end_of_epoch: bool, last: bool) -> bool:
    """Evaluate (and save a checkpoint) per the eval strategy, and always after the last step unless it is ``no``."""
    if evaluation.strategy == "no":
        return False
    if last:
        return True
    return end_of_epoch if evaluation.strategy == "epoch" else step % evaluation.steps == 0


@dataclass
class LoopState:
    """Where a run stands; saved as ``loop_state.json`` in every checkpoint so a resumed run goes on exactly."""

    global_step: int = 0
    epoch: int = 0
    """The epoch in progress (0-based)."""
    batches_done: int = 0
    """Micro-batches of ``epoch`` already trained on (by this process): the sampler position."""
    loss_sum: float = 0.0
    """Sum of every optimizer step's loss, for ``train_loss`` (the mean per step, as the Trainer reports)."""
    logged_loss_sum: float = 0.0
    """Loss summed since the last ``train/loss`` point."""
    logged_at_step: int = 0
    best_metric: float | None = None
    best_checkpoint: str | None = None
    evaluations_since_best: int = 0
    """Evaluations in a row that did not improve on ``best_metric`` (``eval.patience`` stops training at it)."""

    FILE = "loop_state.json"

    def save(self, checkpoint: Path) -> None:
        rundir.atomic_write_json(checkpoint / self.FILE, asdict(self))

    @classmethod
    def load(cls, checkpoint: Path) -> LoopState:
        return cls(**json.loads((checkpoint / cls.FILE).read_text()))

    def start_epoch(self, plan: StepPlan) -> None:
        """A checkpoint taken at the end of an epoch resumes at the start of the next one."""
        if self.batches_done >= plan.batches_per_epoch:
            self.epoch, self.batches_done = self.epoch + 1, 0

    def epoch_progress(self, plan: StepPlan) -> float:
        """Fractional epochs done, the Trainer's ``epoch`` value."""
        return self.epoch + self.batches_done / plan.batches_per_epoch

    def finish_step(self, loss: float) -> None:
        self.global_step += 1
        self.loss_sum += loss
        self.logged_loss_sum += loss

    def train_logs(self, plan: StepPlan, learning_rate: float, grad_norm: float | None) -> dict[str, float]:
        """The Trainer's training log line: mean loss since the last point, learning rate, grad norm, epoch."""
        logs = {"loss": self.logged_loss_sum / max(self.global_step - self.logged_at_step, 1)}
        logs["learning_rate"] = learning_rate
        if grad_norm is not None:
            logs["grad_norm"] = grad_norm
        logs["epoch"] = self.epoch_progress(plan)
        self.logged_loss_sum, self.logged_at_step = 0.0, self.global_step
        return logs

    def consider(self, metrics: dict[str, Any], key: str, checkpoint: Path, greater_is_better: bool = True) -> None:
        """Record ``checkpoint`` as the best one when its ``key`` metric beats the best so far (strictly, as the
        Trainer: a tie keeps the earlier checkpoint), in the metric's direction (loss: lower is better)."""
        value = metrics[key]
        beats = self.best_metric is None or (
            value > self.best_metric if greater_is_better else value < self.best_metric
        )
        if beats:
            self.best_metric, self.best_checkpoint, self.evaluations_since_best = value, str(checkpoint), 0
        else:
            self.evaluations_since_best += 1

    def out_of_patience(self, patience: int | None) -> bool:
        """``eval.patience`` evaluations in a row without improvement: stop, like the Trainer's EarlyStoppingCallback."""
        return patience is not None and self.evaluations_since_best >= patience

    @property
    def train_loss(self) -> float:
        return self.loss_sum / max(self.global_step, 1)


def checkpoint_dir(run: rundir.RunDir, step: int) -> Path:
    return run.checkpoints / f"checkpoint-{step}"


def load_checkpoint_weights(path: Path, device: torch.device) -> dict[str, torch.Tensor]:
    """The model weights of a checkpoint folder (``model.safetensors``, as ``save_pretrained`` writes it)."""
    from safetensors.torch import load_file

    device = torch.device(device)
    where = str(device) if device.type == "cuda" else "cpu"  # safetensors takes "cpu", not Accelerate's "cpu:0"
    return load_file(str(path / "model.safetensors"), device=where)


def rotate_checkpoints(folder: Path, limit: int, best: str | None, finished: bool = False) -> None:
    """Keep the newest and the best checkpoint, and more of the newest up to ``limit`` folders in all. Once the run
    is ``finished`` a limit of 1 keeps the best alone, as the Trainer does: the newest only mattered for resuming."""
    found = [p for p in folder.iterdir() if re.fullmatch(r"checkpoint-\d+", p.name)] if folder.is_dir() else []
    newest_first = sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True)
    keep_newest = not (finished and best and limit == 1)
    keep = {p.name for p in newest_first[: int(keep_newest)]} | ({Path(best).name} if best else set())
    for path in newest_first:
        if len(keep) >= limit:
            break
        keep.add(path.name)
    for path in newest_first:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def train_sampler(train_split, recipe: Recipe):
    return batching.make_train_sampler(
        batching.token_lengths(train_split), recipe.train.batch_size, recipe.train.sampler, recipe.seed
    )


def reseed_sampler(sampler, seed: int, epoch: int) -> None:
    """Each epoch's order depends only on (seed, epoch): a resumed run and every process draw the same one."""
    if hasattr(sampler, "set_epoch"):  # batching.LengthBucketSampler seeds itself from (its seed, epoch)
        sampler.set_epoch(epoch)
    else:
        sampler.generator.manual_seed(seed + epoch)


def even_share(batches: list, rank: int, processes: int) -> list:
    """This process's batches of an epoch: every ``processes``-th one from ``rank``, the last round completed with
    batches from the start so every process takes as many steps (Accelerate's ``even_batches`` rule)."""
    if processes == 1:
        return batches
    short = -len(batches) % processes
    padded = batches + [batches[i % len(batches)] for i in range(short)]
    return padded[rank::processes]


@dataclass(frozen=True)
class Processes:
    """This process's place in the run: ``rank`` of ``count`` (1 without torchrun) and its device."""

    rank: int
    count: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wait_for_everyone(self) -> None:
        if self.count > 1:
            dist.barrier()

    def gather(self, value) -> list:
        """``value`` from every process, in rank order."""
        if self.count == 1:
            return [value]
        values = [None] * self.count
        dist.all_gather_object(values, value)
        return values

    def mean(self, value: float) -> float:
        """The mean of ``value`` over the processes (a sum that is nan or inf anywhere is nan or inf here)."""
        if self.count == 1:
            return value
        total = torch.tensor(value, dtype=torch.float64, device=self.device)
        dist.all_reduce(total)
        return total.item() / self.count
