"""Experiment trackers behind one small API, so every loop logs the same keys to the same places.

Placeholder with the TensorBoard backend only; the MLflow and W&B backends arrive with the trackers work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class Trackers:
    """Fan-out to the recipe's ``train.report_to`` backends; every call is a no-op when not ``enabled``."""

    def __init__(self, recipe, run_root: Path, *, enabled: bool = True):
        self.writer = None
        if enabled and "tensorboard" in recipe.train.report_to:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(Path(run_root) / "tensorboard"))

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log(self, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for tag, value in values.items():
                self.writer.add_scalar(tag, value, step)
            self.writer.flush()

    def log_final(self, metrics: dict[str, Any], model_dir: Path) -> None:
        pass

    def close(self, status: str = "FINISHED") -> None:
        if self.writer is not None:
            self.writer.close()


def open_trackers(recipe, run_root: Path, *, enabled: bool = True) -> Trackers:
    return Trackers(recipe, run_root, enabled=enabled)
