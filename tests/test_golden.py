"""Golden curves: each loop's losses and scores on a fixed small run, against values stored in ``tests/golden``.

A change that moves code must not move a number. Each case trains on the CPU in fp32 on one thread (in a process
of their own, so a CUDA host runs the same path) and compares, step by step, the training losses, every evaluation's
loss and scores and the final ``metrics.json`` scores with the stored ones. Never times or memory.

To regenerate on purpose (a change that is meant to alter the numbers), then commit the files with the reason:

    make golden                                     # every case, old and new values side by side
    .venv/bin/python -m pytest tests/test_golden.py --update-golden -s -k torch

The tolerance, measured (docs/testing.md): the tiny runs on this machine's AVX2 kernels and on torch's portable
ones (``ATEN_CPU_CAPABILITY=default``) differ by at most 1.2e-7 in any loss or score, float32 rounding; real changes
move them by far more: 10% more weight decay moves a loss by 3e-5, one more warm-up step by 7e-2. ``ABS_TOL`` sits
80 times above the first and 3 times below the second.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import sentence, write_jsonl

GOLDEN = Path(__file__).resolve().parent / "golden"
RUNNER = Path(__file__).resolve().parent / "golden_run.py"

ABS_TOL = 1e-5
"""Largest difference accepted in a loss or score (see the module docstring for why this value)."""
REL_TOL = 1e-6

TINY_RUN = [
    # Every value that shapes the numbers, pinned here, so a change of a recipe or a default is not a golden change.
    "seed=42",
    "train.batch_size=8",  # 64 rows / 8 = 8 steps per epoch x 8 epochs = 64 steps
    "train.epochs=8",
    "train.lr=3e-3",
    "train.warmup_ratio=0.1",  # 7 warm-up steps
    "train.weight_decay=0.01",
    "train.lr_scheduler=linear",
    "train.layer_lr_decay=0.9",  # optimizer groups per layer
    "train.max_grad_norm=1.0",
    "train.sampler=group_by_length",
    "train.grad_accum=1",
    "train.logging_steps=1",  # every step's loss
    "train.precision=fp32",
    "train.report_to=[tensorboard]",
    "model.dropout=0.1",  # dropout draws from the RNG: an extra or missing draw shows
    "model.pooler=identity",
    "eval.batch_size=8",
    "eval.strategy=steps",
    "eval.steps=16",  # four evaluations
    "eval.save_total_limit=2",
]
"""The tiny case: the tiny random BERT of the fixtures on ``keyword_pairs``, run by each loop."""

MINILM_RUN = [
    "seed=42",
    "train.max_steps=20",
    "train.batch_size=16",
    "train.lr=8.8e-5",
    "train.warmup_ratio=0.13",
    "train.weight_decay=0.01",
    "train.lr_scheduler=linear",
    "train.layer_lr_decay=0.79",
    "train.max_grad_norm=1.0",
    "train.sampler=group_by_length",
    "train.logging_steps=1",
    "train.precision=fp32",
    "train.report_to=[tensorboard]",
    "model.dropout=0.0",
    "model.pooler=identity",
    "eval.batch_size=64",
    "eval.strategy=steps",
    "eval.steps=10",  # two evaluations on the 408 validation pairs
]
"""The real case: the packaged all-MiniLM-L6-v2 on real MRPC, 20 steps of the Trainer."""


def keyword_pairs(n: int, seed: int) -> list[dict]:
    """MRPC-schema pairs whose label is the sentiment of a keyword in the second sentence: the tiny model learns it
    within the run, so accuracy and F1 move from one evaluation to the next."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = sentence(rng, rng.randint(4, 12)).split()
        words.insert(
            rng.randrange(len(words)), rng.choice(["excellent", "wonderful"] if label else ["terrible", "awful"])
        )
        rows.append(
            {"sentence1": sentence(rng, rng.randint(4, 12)), "sentence2": " ".join(words), "label": label, "idx": i}
        )
    return rows


@pytest.fixture(scope="module")
def keyword_pairs_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("golden_pairs")
    write_jsonl(folder / "train.jsonl", keyword_pairs(64, seed=1))
    write_jsonl(folder / "validation.jsonl", keyword_pairs(24, seed=2))
    return folder


def run_cases(cases: dict[str, list[str]], folder: Path) -> dict[str, dict]:
    """Train each case (name -> overrides of the ``mrpc`` recipe) in one fresh process (``golden_run.py``);
    return each case's curves."""
    spec = [
        {"out": str(folder / f"{name}.json"), "arguments": ["mrpc", *overrides, f"output_dir={folder / name}"]}
        for name, overrides in cases.items()
    ]
    (folder / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(folder / "spec.json")], env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"golden run failed ({done.returncode}):\n{done.stderr[-3000:]}"
    return {name: json.loads((folder / f"{name}.json").read_text()) for name in cases}


def flatten(curves: dict) -> dict[str, float]:
    """``train_loss@3``, ``eval_f1@8``, ``final.eval_accuracy``: one number per key."""
    flat = {f"train_loss@{step}": value for step, value in curves["train_loss"].items()}
    for step, scores in curves["evaluations"].items():
        flat.update({f"eval_{name}@{step}": value for name, value in scores.items()})
    flat.update({f"final.{key}": value for key, value in curves["final"].items()})
    return flat


def close(stored: float, got: float) -> bool:
    if stored is None or got is None:
        return stored is got
    if math.isnan(stored) or math.isnan(got):
        return math.isnan(stored) and math.isnan(got)
    return abs(stored - got) <= ABS_TOL + REL_TOL * abs(stored)


def side_by_side(stored: dict[str, float], got: dict[str, float], only_changed: bool) -> str:
    """A table of key, stored value, new value and their difference; ``!`` marks what is out of tolerance."""

    def order(key: str):
        name, _, step = key.partition("@")
        return (key.startswith("final."), name, int(step) if step.isdigit() else 0)

    lines = [f"  {'':1} {'key':<28} {'stored':>14} {'now':>14} {'difference':>12}"]
    for key in sorted(stored.keys() | got.keys(), key=order):
        old, new = stored.get(key), got.get(key)
        same = key in stored and key in got and close(old, new)
        if only_changed and same:
            continue
        diff = f"{new - old:+.3e}" if isinstance(old, (int, float)) and isinstance(new, (int, float)) else "missing"
        lines.append(f"  {'' if same else '!':1} {key:<28} {_cell(old):>14} {_cell(new):>14} {diff:>12}")
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else f"{value:.8g}"


def check_against_golden(name: str, overrides: list[str], curves: dict, update: bool) -> None:
    path = GOLDEN / f"{name}.json"
    got = flatten(curves)
    stored_file = json.loads(path.read_text()) if path.is_file() else None
    if update:
        if stored_file:
            print(f"\n{name}: stored -> now\n{side_by_side(flatten(stored_file['curves']), got, only_changed=False)}")
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps({"overrides": overrides, "curves": curves}, indent=1, sort_keys=True) + "\n")
        return
    assert stored_file, f"no {path.name}: create it with make golden (pytest tests/test_golden.py --update-golden)"
    assert stored_file["overrides"] == overrides, (
        f"{path.name} was made with other overrides than this test pins; regenerate it with make golden"
    )
    stored = flatten(stored_file["curves"])
    bad = [
        key for key in stored.keys() | got.keys() if not (key in stored and key in got and close(stored[key], got[key]))
    ]
    assert not bad, (
        f"{name}: {len(bad)} of {len(stored)} values left the golden curve (tolerance {ABS_TOL} + {REL_TOL} x value); "
        f"if the change is meant to move numbers, run make golden and commit the new file with the reason:\n"
        + side_by_side(stored, got, only_changed=True)
    )


LOOPS = ["trainer", "torch", "accelerate"]


@pytest.fixture(scope="module")
def tiny_curves(tiny_model_dir, keyword_pairs_dir, tmp_path_factory) -> dict[str, dict]:
    """The tiny case run by each loop, the three in one process."""
    data = [f"model.name={tiny_model_dir}", f"data.dir={keyword_pairs_dir}"]
    return run_cases({loop: [*data, f"loop={loop}", *TINY_RUN] for loop in LOOPS}, tmp_path_factory.mktemp("golden"))


@pytest.mark.parametrize("loop", LOOPS)
def test_tiny_run_matches_golden(loop, tiny_curves, request):
    curves = tiny_curves[loop]
    assert len(curves["train_loss"]) == 64 and len(curves["evaluations"]) == 4  # the run is the one pinned above
    overrides = [f"loop={loop}", *TINY_RUN]
    check_against_golden(f"tiny_{loop}", overrides, curves, request.config.getoption("--update-golden"))


@pytest.mark.slow
def test_minilm_on_real_mrpc_matches_golden(minilm_path, shared_mrpc, tmp_path, request):
    overrides = ["loop=trainer", *MINILM_RUN]
    curves = run_cases({"minilm": [f"model.name={minilm_path}", f"data.dir={shared_mrpc}", *overrides]}, tmp_path)
    curves = curves["minilm"]
    assert len(curves["train_loss"]) == 20 and len(curves["evaluations"]) == 2
    check_against_golden("minilm_mrpc", overrides, curves, request.config.getoption("--update-golden"))
