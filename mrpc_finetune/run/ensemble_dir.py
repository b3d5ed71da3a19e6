"""The ensemble folder: finished runs of one task scored as one model, their probabilities averaged.

ENS/ensemble.json    the members (absolute run folders) and whether each scores both sentence orders
ENS/metrics.json     the ensemble's scores, keyed as a run's (``eval_accuracy``, ``test_f1``, ...), and its members
ENS/README.md        its card: the members, how to combine them, what it costs
ENS/eval_<split>.json, ENS/predictions_<file>.tsv    what ``eval`` and ``predict`` write, as in a run folder

It holds no model of its own: the members' folders must stay where ``ensemble.json`` says they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mrpc_finetune.errors import UserError
from mrpc_finetune.run.rundir import atomic_write_json

ENSEMBLE_FILE = "ensemble.json"
"""What makes a folder an ensemble folder (a run folder holds ``recipe.json`` instead)."""


@dataclass(frozen=True)
class EnsembleDir:
    root: Path

    @property
    def record_file(self) -> Path:
        return self.root / ENSEMBLE_FILE

    @property
    def metrics_file(self) -> Path:
        return self.root / "metrics.json"

    @property
    def card_file(self) -> Path:
        return self.root / "README.md"

    def members(self) -> list[Path]:
        return [Path(member) for member in self.read()["members"]]

    def both_orders(self) -> bool:
        return bool(self.read()["both_orders"])

    def read(self) -> dict:
        """``ensemble.json``: ``{"members": [folder, ...], "both_orders": bool}``."""
        try:
            record = json.loads(self.record_file.read_text())
            if record["members"] and all(isinstance(m, str) for m in record["members"]):
                return record
        except (OSError, ValueError, KeyError, TypeError):
            pass
        raise UserError(f"{self.record_file}: not a readable ensemble record (members, both_orders); rebuild it")

    def write(self, members: list[Path], both_orders: bool) -> None:
        record = {"members": [str(Path(m).resolve()) for m in members], "both_orders": both_orders}
        atomic_write_json(self.record_file, record)


def is_ensemble(path: str | Path) -> bool:
    return (Path(path) / ENSEMBLE_FILE).is_file()


def check_can_write(out: Path) -> EnsembleDir:
    """An ensemble goes into a new or empty folder, or replaces an earlier ensemble there; never into a run."""
    ens = EnsembleDir(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--output-dir {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not is_ensemble(out):
        raise UserError(
            f"--output-dir {out}: not empty and not an ensemble folder (no {ENSEMBLE_FILE}); choose another"
        )
    return ens
