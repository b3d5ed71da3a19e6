"""What the plain PyTorch loop and the Accelerate loop share with each other (and mirror from the Trainer):
optimizer groups, the step plan, evaluation to metrics, checkpoint bookkeeping and the final metrics dict.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from . import data, hardware, runs
from .pipeline import best_metric_name
from .recipe import EvalConfig, Recipe, TrainConfig
from .tasks import TaskSpec

NO_DECAY_PATTERNS = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]
"""Parameter names kept free of weight decay, the same patterns the Trainer uses."""


def enable_tf32_if_supported() -> None:
    """TF32 matmuls on Ampere and newer (fp32 range, a 10-bit mantissa, several times the speed), as the Trainer."""
    from transformers.utils.import_utils import enable_tf32

    if hardware.use_tf32():
        enable_tf32(True)


def build_optimizer(model: torch.nn.Module, train: TrainConfig) -> torch.optim.Optimizer:
    """AdamW with weight decay on every weight except biases and LayerNorm parameters, as the Trainer does."""
    from transformers.trainer_pt_utils import get_parameter_names

    decayed = set(get_parameter_names(model, [torch.nn.LayerNorm], NO_DECAY_PATTERNS))
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for name, p in trainable if name in decayed], "weight_decay": train.weight_decay},
        {"params": [p for name, p in trainable if name not in decayed], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=train.lr)


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

    FILE = "loop_state.json"

    def save(self, checkpoint: Path) -> None:
        runs.atomic_write_json(checkpoint / self.FILE, asdict(self))

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

    def consider(self, metrics: dict[str, Any], key: str, checkpoint: Path) -> None:
        """Record ``checkpoint`` as the best one when its ``key`` metric beats the best so far (higher is better)."""
        value = metrics[key]
        if self.best_metric is None or value > self.best_metric:
            self.best_metric, self.best_checkpoint = value, str(checkpoint)

    @property
    def train_loss(self) -> float:
        return self.loss_sum / max(self.global_step, 1)


def checkpoint_dir(run: runs.RunDir, step: int) -> Path:
    return run.checkpoints / f"checkpoint-{step}"


def rotate_checkpoints(folder: Path, limit: int, best: str | None) -> None:
    """Keep the newest and the best checkpoint, and more of the newest up to ``limit`` folders in all."""
    found = [p for p in folder.iterdir() if re.fullmatch(r"checkpoint-\d+", p.name)] if folder.is_dir() else []
    newest_first = sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True)
    keep = {p.name for p in newest_first[:1]} | ({Path(best).name} if best else set())
    for path in newest_first:
        if len(keep) >= limit:
            break
        keep.add(path.name)
    for path in newest_first:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def train_sampler(train_split, recipe: Recipe):
    return data.make_train_sampler(
        data.token_lengths(train_split), recipe.train.batch_size, recipe.train.sampler, recipe.seed
    )


def reseed_sampler(sampler, seed: int, epoch: int) -> None:
    """Each epoch's order depends only on (seed, epoch): a resumed run and every process draw the same one."""
    if hasattr(sampler, "set_epoch"):  # samplers.LengthBucketSampler seeds itself from (its seed, epoch)
        sampler.set_epoch(epoch)
    else:
        sampler.generator.manual_seed(seed + epoch)


def eval_loader(split, batch_size: int, collator, num_workers: int = 0) -> DataLoader:
    # A private generator: creating the iterator then draws no number from the global RNG that dropout uses.
    return DataLoader(
        split, batch_size=batch_size, collate_fn=collator, num_workers=num_workers, generator=torch.Generator()
    )


def eval_prefixes(splits: dict[str, Any]) -> dict[str, str]:
    """``eval`` for a single evaluation split, ``eval_<split>`` for several: the Trainer's key names."""
    return {name: "eval" if len(splits) == 1 else f"eval_{name}" for name in splits}


def best_metric_key(recipe: Recipe, task: TaskSpec) -> str:
    return f"eval_{best_metric_name(recipe, task)}"


def evaluate(
    model,
    loaders: dict[str, DataLoader],
    task: TaskSpec,
    compute_metrics: Callable,
    gather: Callable = lambda tensors: tensors,
    device: torch.device | None = None,
    autocast: Callable = contextlib.nullcontext,
) -> dict[str, Any]:
    """Loss, task metrics, speed and row count of every evaluation split, keyed like the Trainer's.

    ``gather`` collects logits and labels from every process (``Accelerator.gather_for_metrics``, which drops
    the rows repeated to even out the last batches), so each example counts exactly once.
    """
    from transformers.trainer_utils import speed_metrics

    prefixes = eval_prefixes(loaders)
    metrics: dict[str, Any] = {}
    model.eval()
    for name, loader in loaders.items():
        started, logits, labels, batches = time.time(), [], [], 0
        with torch.no_grad():
            for batch in loader:
                if device is not None:
                    batch = {k: v.to(device) for k, v in batch.items()}
                with autocast():
                    output = model(**{k: v for k, v in batch.items() if k != "labels"})
                batch_logits, batch_labels = gather((output.logits.float(), batch["labels"]))
                logits.append(batch_logits.cpu())
                labels.append(batch_labels.cpu())
                batches += 1
        all_logits, all_labels = torch.cat(logits), torch.cat(labels)
        if task.is_regression:
            loss = torch.nn.functional.mse_loss(all_logits.squeeze(-1), all_labels.float())
        else:
            loss = torch.nn.functional.cross_entropy(all_logits, all_labels)
        scores = compute_metrics((all_logits.numpy(), all_labels.numpy()))
        prefix = prefixes[name]
        metrics[f"{prefix}_loss"] = loss.item()
        metrics.update({f"{prefix}_{k}": float(v) for k, v in scores.items()})
        metrics.update(speed_metrics(prefix, started, num_samples=len(all_labels), num_steps=batches))
        metrics[f"{prefix}_rows"] = len(all_labels)
    model.train()
    return metrics


def tensorboard_scalars(logs: dict[str, Any]) -> dict[str, float]:
    """Logs renamed to the Trainer's TensorBoard tags (``train/loss``, ``eval/f1``); row counts left out."""
    from transformers.integrations.integration_utils import rewrite_logs

    scalars = {k: v for k, v in logs.items() if isinstance(v, (int, float)) and not k.endswith("_rows")}
    return rewrite_logs(scalars)


def final_scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """What the Trainer logs at the end: the final evaluation and the training loss and runtime."""
    chosen = {k: v for k, v in metrics.items() if k.startswith("eval_") or k in ("train_loss", "train_runtime")}
    return tensorboard_scalars(chosen)


def final_metrics(
    eval_metrics: dict[str, Any],
    state: LoopState,
    plan: StepPlan,
    *,
    loop: str,
    precision: str,
    train_runtime: float,
    started: float,
) -> dict[str, Any]:
    """``metrics.json``: the same keys the Trainer loop writes."""
    return {
        **eval_metrics,
        "epoch": state.epoch_progress(plan),
        "train_loss": state.train_loss,
        "train_runtime": round(train_runtime, 4),
        "global_step": state.global_step,
        "best_checkpoint": state.best_checkpoint,
        "loop": loop,
        "precision": precision,
        "wall_seconds": time.perf_counter() - started,
        "peak_memory_mb": runs.peak_memory_mb(),
    }


def eval_rows(eval_splits: dict[str, Any]) -> dict[str, int]:
    """Rows per evaluation split under the metric key names (``eval_rows`` for one split)."""
    return {f"{prefix}_rows": len(eval_splits[name]) for name, prefix in eval_prefixes(eval_splits).items()}
