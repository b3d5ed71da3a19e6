"""What ``eval`` and ``predict`` score with: one finished run, or the members of an ensemble folder, each pair in
one order or in both, their probabilities (regression: scores) averaged.

    scorer = open_scorer("runs/mrpc_minilm")                 # eval.both_orders as the run's recipe.json records it
    scorer = open_scorer("runs/mrpc-ens", both_orders=False)  # an ensemble, one order whatever it recorded
    found = probabilities(scorer, raw_rows)                   # .one_order, and .both_orders when asked
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mrpc_finetune import mean_pooling
from mrpc_finetune.data import batching, loading, tokenization
from mrpc_finetune.errors import UserError
from mrpc_finetune.inference import averaging
from mrpc_finetune.recipe.schema import Recipe
from mrpc_finetune.recipe.tasks import CUSTOM, TaskSpec, check_both_orders, task_for
from mrpc_finetune.run import rundir
from mrpc_finetune.run.ensemble_dir import EnsembleDir, is_ensemble

SHARED_DATA_KEYS = ("task", "dir", "file", "hub_dataset", "validation_fraction", "split_seed", "text_columns")
"""``data.*`` keys the members of an ensemble must share: the same task and the same rows to be scored on."""

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model")
"""The files that define how a model folder's tokenizer splits text (those present are compared)."""


@dataclass
class Scorer:
    root: Path
    """The run folder, or the ensemble folder: where ``eval`` and ``predict`` write."""
    members: list[tuple[rundir.RunDir, Recipe]]
    """The run itself, or the ensemble's members."""
    task: TaskSpec
    both_orders: bool
    ensemble: bool = False

    @property
    def recipe(self) -> Recipe:
        """The first member's recipe: the data that ``eval`` reads, the batch size."""
        return self.members[0][1]

    @property
    def passes_per_row(self) -> int:
        """Forward passes per scored row: one per member and order."""
        return len(self.members) * (2 if self.both_orders else 1)


@dataclass
class Probabilities:
    one_order: np.ndarray
    """Each member's probabilities of (a, b), averaged over the members."""
    both_orders: np.ndarray | None = None
    """Each member's mean of (a, b) and (b, a), averaged over the members; None in one order."""

    @property
    def chosen(self) -> np.ndarray:
        """What predictions use: both orders when they were scored."""
        return self.one_order if self.both_orders is None else self.both_orders


def open_scorer(path: str | Path, both_orders: bool | None = None) -> Scorer:
    """The run or ensemble at ``path``; ``both_orders`` None follows what it recorded (``eval.both_orders`` in the
    run's recipe.json, ``both_orders`` in ensemble.json), True or False overrides that."""
    root = Path(path)
    if is_ensemble(root):
        ens = EnsembleDir(root)
        members = [rundir.open_run(member) for member in ens.members()]
        return scorer_of(root, members, ens.both_orders() if both_orders is None else both_orders, ensemble=True)
    run, recipe = rundir.open_run(root)
    return scorer_of(root, [(run, recipe)], recipe.eval.both_orders if both_orders is None else both_orders)


def scorer_of(root: Path, members: list, both_orders: bool, ensemble: bool = False) -> Scorer:
    task = check_members_agree(members)
    if both_orders:
        check_both_orders(task.name, task.text_columns, key="--both-orders")
    return Scorer(root, members, task, both_orders, ensemble)


def probabilities(scorer: Scorer, raw) -> Probabilities:
    """Every member's probabilities for the rows of ``raw`` (their labels, if any, play no part), averaged; each
    member loads, scores and is let go in turn, so memory holds one model at a time."""
    task = scorer.task
    texts = raw.select_columns(list(task.text_columns))
    swapped = loading.swapped_pairs(texts, task) if scorer.both_orders else None
    one_order, both_orders = [], []
    for run, recipe in scorer.members:
        tokenizer, model = load_run_model(run)
        collator = batching.make_collator(tokenizer)

        def of(rows, tokenizer=tokenizer, model=model, collator=collator, recipe=recipe):
            tokenized = tokenization.tokenize_split(rows, tokenizer, task, recipe.data)
            return averaging.model_probabilities(model, tokenized, collator, recipe.eval.batch_size, task)

        one_order.append(of(texts))
        if swapped is not None:
            both_orders.append(averaging.mean([one_order[-1], of(swapped)]))
        del model
    return Probabilities(averaging.mean(one_order), averaging.mean(both_orders) if both_orders else None)


def load_run_model(run: rundir.RunDir):
    """Tokenizer and model of a finished run, from safetensors, never running remote code (a mean-pooled model
    is built by this package's own class, not by the copy of its code in the folder)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    mean_pooling.register_auto_classes()
    tokenizer = AutoTokenizer.from_pretrained(run.model, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(run.model, use_safetensors=True, trust_remote_code=False)
    return tokenizer, model


def run_task(run: rundir.RunDir, recipe: Recipe) -> TaskSpec:
    """The task a run trained on: its recipe's columns and, for custom data, the label names its model's config
    keeps (``id2label``; regression for one float output). Reads the config only, so that the files given to
    eval or predict are checked before the weights load."""
    if recipe.data.task != CUSTOM:
        return task_for(recipe.data)
    if _model_config(run).get("problem_type") == "regression":
        return task_for(recipe.data, ())
    return task_for(recipe.data, tuple(_labels(run)))


def check_members_agree(members: list[tuple[rundir.RunDir, Recipe]]) -> TaskSpec:
    """The members' common task; a one-line error naming the first member whose task, data, labels or tokenizer
    differ from the first one's (their probabilities would not be of the same question)."""
    first_run, first_recipe = members[0]
    task, labels, tokenizer = run_task(first_run, first_recipe), _labels(first_run), tokenizer_fingerprint(first_run)
    seen = {first_run.root.resolve()}
    for run, recipe in members[1:]:
        where = f"ensemble member {run.root}"
        if run.root.resolve() in seen:
            raise UserError(f"{where}: listed twice")
        seen.add(run.root.resolve())
        for key in SHARED_DATA_KEYS:
            mine, first = getattr(recipe.data, key), getattr(first_recipe.data, key)
            if mine != first:
                raise UserError(
                    f"{where}: data.{key}={mine!r}, but {first_run.root} has {first!r}; members share task and data"
                )
        if _labels(run) != labels:
            raise UserError(f"{where}: labels {_labels(run)} differ from {first_run.root}'s {labels}")
        if tokenizer_fingerprint(run) != tokenizer:
            raise UserError(f"{where}: its tokenizer differs from {first_run.root}'s; members must share one")
    return task


def _model_config(run: rundir.RunDir) -> dict:
    return json.loads((run.model / "config.json").read_text())


def _labels(run: rundir.RunDir) -> list[str]:
    """The label names in id order, ``["score"]`` for a regression."""
    config = _model_config(run)
    if config.get("problem_type") == "regression":
        return ["score"]
    id2label = config.get("id2label", {})
    return [id2label[key] for key in sorted(id2label, key=int)]


RUNTIME_STATE = ("padding", "truncation")
"""Keys of ``tokenizer.json`` that hold the state of the tokenizer's last call, not how it splits text (transformers
resets both on every call). Runs saved before the tokenization gave the tokenizer back unchanged
(``data.tokenization.tokenize_split``) differ in them by whether their tokenization came from the ``datasets`` cache,
and an ensemble may mix such runs: the fingerprint leaves them out."""


def tokenizer_fingerprint(run: rundir.RunDir) -> str:
    """sha256 over the tokenizer-defining files of the run's model folder (``tokenizer.json`` less its
    ``RUNTIME_STATE``)."""
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        path = run.model / name
        if path.is_file():
            content = path.read_bytes()
            if name == "tokenizer.json":
                spec = {k: v for k, v in json.loads(content).items() if k not in RUNTIME_STATE}
                content = json.dumps(spec, sort_keys=True).encode()
            digest.update(name.encode() + b"\0" + content)
    return digest.hexdigest()
