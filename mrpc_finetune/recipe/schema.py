"""What a recipe is: typed sections with their defaults, a docstring per field, and the checks that run whenever
a recipe is built or changed (``__post_init__``), plus the checks across sections once all overrides are in.

Recipe files, dotted overrides and saved ``recipe.json`` files become these objects in ``loading.py`` and ``overrides.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mrpc_finetune.errors import UserError
from mrpc_finetune.recipe.tasks import CUSTOM, GLUE_TASKS, check_both_orders, check_eval_metric, eval_metric_choices

TRACKERS = ("tensorboard", "mlflow", "wandb")
"""Values ``train.report_to`` accepts."""


def _check(condition: bool, key: str, message: str) -> None:
    if not condition:
        raise UserError(f"{key}: {message}")


@dataclass
class ModelConfig:
    name: str = "bert-base-uncased"
    """Hub id, a local model folder, or ``package:MODULE`` for a pip package whose ``get_model_path()`` gives one."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) to pin; ignored for local folders."""
    dropout: float | None = None
    """Override of the encoder's ``hidden_dropout_prob`` and ``attention_probs_dropout_prob``; None keeps the config's."""
    classifier_dropout: float | None = None
    """Dropout before the classification head; None uses the encoder's dropout."""
    pooler: Literal["pretrained", "identity", "mean"] = "pretrained"
    """What feeds the classifier. ``pretrained``: the checkpoint's pooler (dense + tanh over [CLS]); ``identity``: that
    pooler started as tanh([CLS]), for checkpoints whose pooler was never trained (sentence-transformers models pool
    by mean, so their pooler is near zero and the head starts almost blind); ``mean``: no pooler, the mean of the last
    hidden states over the real tokens, as sentence-transformers trained them (BERT checkpoints only; the saved model
    then loads elsewhere with ``trust_remote_code=True``: docs/recipes.md, "What the classifier reads")."""
    trust_remote_code: bool = False
    """Run Python code shipped with a Hub model. Off unless a recipe sets it on explicitly."""
    reinit_layers: int = 0
    """Start the top N encoder layers from fresh random weights (BERT's initializer, under the run's seed) instead
    of the pretrained ones: the top layers of a pretrained encoder are the most specific to its pretraining task
    (Zhang et al. 2021, "Revisiting Few-sample BERT Fine-tuning", arXiv:2006.05987). 0 keeps them all."""

    def __post_init__(self):
        _check(bool(self.name), "model.name", "must not be empty")
        _check(self.reinit_layers >= 0, "model.reinit_layers", f"must be >= 0, got {self.reinit_layers}")
        for key in ("dropout", "classifier_dropout"):
            value = getattr(self, key)
            _check(value is None or 0.0 <= value < 1.0, f"model.{key}", f"must be in [0, 1), got {value}")


@dataclass
class DataConfig:
    task: str = "mrpc"
    """A GLUE task name (sets text columns, label names and metrics, see ``mrpc_finetune/tasks.py``), or ``custom``
    for your own data: ``text_columns`` and ``label_column`` name the columns, labels come from the training file."""
    dir: str | None = None
    """Local folder with ``{train,validation,test}.{jsonl,json,csv,tsv,parquet}``; None (and no ``file``) loads from
    the Hub."""
    hub_dataset: str = "nyu-mll/glue"
    """The dataset ``datasets.load_dataset`` reads when ``dir`` and ``file`` are None, with the task name as its
    config: a Hub id, or a local folder laid out as that Hub repository (parquet files per config)."""
    max_length: int = 128
    """Pairs longer than this many tokens are truncated, longest text first."""
    num_proc: int | None = None
    """Processes for ``Dataset.map`` tokenization; None tokenizes in this process."""
    file: str | None = None
    """One local file holding all the labelled rows; ``validation_fraction`` of them become the validation split."""
    validation_fraction: float = 0.1
    """Share of ``file``'s rows held out for validation, per label (stratified) and the same on every run."""
    split_seed: int = 0
    """Seed of the validation carve-out from ``file``; apart from ``seed`` so that seed sweeps share one split."""
    text_columns: list[str] | None = None
    """The text column, or two for pairs, e.g. ``[question,answer]``; None uses the task's (required for custom)."""
    label_column: str = "label"
    """Column holding the labels: class values (integers or strings) or float scores (regression, custom only)."""
    swap_pairs: bool = False
    """Also train on every pair with its two texts swapped (twice the training rows per epoch), for pair tasks whose
    order carries no meaning (MRPC, QQP, STS-B); evaluation and test splits stay as they are."""
    exclude: list[str] = field(default_factory=list)
    """Rows to leave out, as ``COLUMN=VALUE`` items, e.g. ``[source=MSRpar]``: a row whose COLUMN holds VALUE
    (compared as text) is dropped from train, the evaluation splits and labelled test splits, before ``file``'s
    validation carve and before tokenizing. Each run prints, and records in run_info.json and its model card, how
    many rows every split lost; a column missing from a file, or a split left empty, is an error."""

    def __post_init__(self):
        known = ", ".join([*GLUE_TASKS, CUSTOM])
        _check(
            self.task in GLUE_TASKS or self.task == CUSTOM, "data.task", f"unknown task {self.task!r}; known: {known}"
        )
        if self.text_columns is not None:
            self.text_columns = list(self.text_columns)  # a tuple in a recipe file equals its JSON round trip
            _check(
                1 <= len(self.text_columns) <= 2, "data.text_columns", f"one or two columns, got {self.text_columns}"
            )
            _check(all(self.text_columns), "data.text_columns", "column names must not be empty")
        _check(bool(self.label_column), "data.label_column", "must not be empty")
        self.exclude = list(self.exclude)
        for item in self.exclude:
            column, sep, _ = item.partition("=")
            _check(bool(sep and column), "data.exclude", f"items are COLUMN=VALUE (e.g. source=MSRpar), got {item!r}")
        _check(
            0 < self.validation_fraction < 1,
            "data.validation_fraction",
            f"must be in (0, 1), got {self.validation_fraction}",
        )
        _check(not (self.file and self.dir), "data.file", "data.file and data.dir exclude each other; set one")
        _check(self.max_length >= 8, "data.max_length", f"must be at least 8, got {self.max_length}")
        _check(self.num_proc is None or self.num_proc >= 1, "data.num_proc", f"must be >= 1, got {self.num_proc}")


@dataclass
class TrainConfig:
    epochs: float = 3.0
    """Passes over the training set; ignored when ``max_steps`` > 0."""
    max_steps: int = -1
    """Optimizer steps to run; -1 runs ``epochs`` full passes."""
    batch_size: int = 32
    """Examples per device per forward pass."""
    grad_accum: int = 1
    """Forward passes accumulated into one optimizer step (effective batch = batch_size * grad_accum * devices)."""
    lr: float = 2e-5
    """Peak learning rate of AdamW."""
    layer_lr_decay: float = 1.0
    """Layer-wise learning-rate decay: the head and pooler train at ``lr``, the encoder layer ``k`` below the top at
    ``lr * layer_lr_decay**k``, the embeddings lowest; 1.0 gives every layer ``lr``."""
    weight_decay: float = 0.01
    """AdamW weight decay (not applied to biases and LayerNorm weights)."""
    warmup_ratio: float = 0.0
    """Fraction of the optimizer steps spent warming the learning rate up linearly from 0."""
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = "linear"
    """Learning-rate schedule after warm-up."""
    max_grad_norm: float = 1.0
    """Gradient-norm clipping threshold; 0 disables clipping."""
    sampler: Literal["group_by_length", "random"] = "group_by_length"
    """Training batch order. ``group_by_length``: batches of pairs of similar length (sorted within mega-batches of
    50 batches), met in a random order that changes every epoch, so padding nearly vanishes; ``random``: plain
    shuffling with dynamic padding, the reference workflow."""
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    """``auto`` picks bf16 on GPUs that support it, else fp16 on CUDA, and fp32 on CPU. On a CPU, ``bf16`` runs in
    every loop and ``fp16`` in ``loop=torch`` (to check those paths, not for speed; docs/loops.md)."""
    logging_steps: int = 10
    """Optimizer steps between TensorBoard loss / learning-rate points."""
    num_workers: int = 0
    """DataLoader worker processes; 0 collates in the training process (fastest for short pairs on CPU)."""
    torch_compile: bool = False
    """Compile the model with ``torch.compile`` (worth it on GPU for long runs)."""
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    """Experiment trackers that receive the recipe, every logged metric and the final model: ``tensorboard``
    (``RUN/tensorboard``), ``mlflow`` (``MLFLOW_TRACKING_URI``, else MLflow's default local store: ``mlflow.db`` with
    artifacts in ``mlruns/``, in the working folder), ``wandb`` (honours ``WANDB_MODE=offline``); ``[]`` for none."""

    def __post_init__(self):
        _check(self.epochs > 0, "train.epochs", f"must be > 0, got {self.epochs}")
        _check(
            self.max_steps == -1 or self.max_steps > 0, "train.max_steps", f"must be -1 or > 0, got {self.max_steps}"
        )
        _check(self.batch_size > 0, "train.batch_size", f"must be > 0, got {self.batch_size}")
        _check(self.grad_accum > 0, "train.grad_accum", f"must be > 0, got {self.grad_accum}")
        _check(self.lr > 0, "train.lr", f"must be > 0, got {self.lr}")
        _check(0 < self.layer_lr_decay <= 1, "train.layer_lr_decay", f"must be in (0, 1], got {self.layer_lr_decay}")
        _check(self.weight_decay >= 0, "train.weight_decay", f"must be >= 0, got {self.weight_decay}")
        _check(0 <= self.warmup_ratio < 1, "train.warmup_ratio", f"must be in [0, 1), got {self.warmup_ratio}")
        _check(self.max_grad_norm >= 0, "train.max_grad_norm", f"must be >= 0, got {self.max_grad_norm}")
        _check(self.logging_steps > 0, "train.logging_steps", f"must be > 0, got {self.logging_steps}")
        _check(self.num_workers >= 0, "train.num_workers", f"must be >= 0, got {self.num_workers}")
        self.report_to = list(self.report_to)
        for tracker in self.report_to:
            _check(tracker in TRACKERS, "train.report_to", f"unknown tracker {tracker!r}; known: {', '.join(TRACKERS)}")


@dataclass
class EvalConfig:
    batch_size: int = 64
    """Examples per device per evaluation forward pass."""
    strategy: Literal["epoch", "steps", "no"] = "epoch"
    """When to evaluate and save a checkpoint: every epoch, every ``steps`` optimizer steps, or only at the end."""
    steps: int = 500
    """Optimizer steps between evaluations when ``strategy`` is ``steps``."""
    metric: str | None = None
    """Metric that picks the best checkpoint (e.g. ``accuracy``); None uses the task's main metric."""
    save_total_limit: int = 2
    """Checkpoints kept on disk: always the best and, while training, the newest (to resume from); more of the
    newest up to this count. With 1, the best alone remains once the run has finished, as with the Trainer."""
    patience: int | None = None
    """Stop early after this many evaluations in a row without improving ``metric``; None trains to the end."""
    both_orders: bool = False
    """Score every pair as (a, b) and as (b, a) and average the two: class probabilities (STS-B: the scores), for
    pair tasks whose order means nothing (MRPC, QQP, STS-B, custom pairs). Used by the end-of-run scoring of every
    loop (``metrics.json`` then adds ``eval_both_orders_*`` / ``test_both_orders_*`` beside the one-order scores),
    by ``eval`` and by ``predict``; never by the choice of the best checkpoint during training, which scores one
    order. Twice the inference per row."""

    def __post_init__(self):
        _check(self.batch_size > 0, "eval.batch_size", f"must be > 0, got {self.batch_size}")
        _check(self.patience is None or self.patience >= 1, "eval.patience", f"must be >= 1, got {self.patience}")
        _check(self.steps > 0, "eval.steps", f"must be > 0, got {self.steps}")
        _check(self.save_total_limit >= 1, "eval.save_total_limit", f"must be >= 1, got {self.save_total_limit}")


@dataclass
class Recipe:
    name: str = ""
    """Recipe name; filled in from the recipe file's name."""
    description: str = ""
    """One line shown by ``mrpc-finetune list``."""
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: str = ""
    """Run directory; empty means ``runs/<name>``."""
    seed: int = 42
    """Seed for weight init of the head, shuffling and dropout."""
    loop: Literal["trainer", "torch", "accelerate"] = "trainer"
    """Training loop: the Hugging Face Trainer, a plain PyTorch loop, or an Accelerate loop."""
    resume: bool = False
    """Continue from the last checkpoint in ``output_dir``."""
    overwrite: bool = False
    """Replace an existing, non-empty ``output_dir``."""

    def __post_init__(self):
        _check(not (self.resume and self.overwrite), "resume", "resume=true and overwrite=true exclude each other")

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir or f"runs/{self.name or 'run'}")


def check_sections_agree(recipe: Recipe) -> None:
    """Checks across sections, run once all overrides are in (one at a time, their order would matter)."""
    data = recipe.data
    check_eval_metric(recipe.eval.metric, data.task, eval_metric_choices(data.task))
    columns = data.text_columns or ([] if data.task == CUSTOM else GLUE_TASKS[data.task].text_columns)
    _check(
        not data.swap_pairs or len(columns) == 2,
        "data.swap_pairs",
        f"needs a pair task (two text columns); {data.task} has {len(columns)}: {', '.join(columns) or 'none set'}",
    )
    if recipe.eval.both_orders:
        check_both_orders(data.task, columns)
