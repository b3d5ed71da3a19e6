"""Tokenizer and model from a Hub id, a local folder or a pip-packaged model, failing fast when offline."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

from mrpc_finetune import mean_pooling
from mrpc_finetune.errors import UserError, first_line
from mrpc_finetune.hub import OFFLINE_ROUTE, hub_reachable
from mrpc_finetune.recipe.schema import ModelConfig
from mrpc_finetune.recipe.tasks import TaskSpec

REMOTE_CODE_WARNING = "WARNING: model.trust_remote_code=true runs Python code downloaded with the model"


def warn_if_remote_code(cfg: ModelConfig) -> None:
    """``REMOTE_CODE_WARNING`` on stderr when the recipe lets the model run its own code: every command that
    resolves such a recipe says so, in the same words."""
    if cfg.trust_remote_code:
        print(REMOTE_CODE_WARNING, file=sys.stderr)


def resolve_model_path(name: str) -> str:
    """``package:MODULE`` -> MODULE.get_model_path(); an existing folder -> itself; anything else is a Hub id."""
    if name.startswith("package:"):
        module_name = name.removeprefix("package:")
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise UserError(
                f"model.name={name}: Python package {module_name!r} is not installed (run `make setup`)"
            ) from None
        return str(module.get_model_path())
    path = Path(name).expanduser()
    if is_local_path(name):
        if not path.exists():
            raise UserError(_missing_folder(name, path))
        if not (path / "config.json").is_file():
            raise UserError(f"model.name={name}: {path} is not a model folder (no config.json in it)")
        return str(path)
    return name


def is_local_path(name: str) -> bool:
    """A ``model.name`` that exists on disk, or is written as a path (``./``, ``/``, ``~``, or with two slashes or
    more, which no Hub id has: ``runs/RUN/model``), is a local folder."""
    return not name.startswith("package:") and (
        Path(name).expanduser().exists() or name.startswith((".", "/", "~")) or name.count("/") >= 2
    )


def _missing_folder(name: str, path: Path) -> str:
    """No such folder; for a run's ``RUN/model`` (written when the run finishes), the command that makes it."""
    message = f"model.name={name}: {path} is not a model folder (no such folder)"
    if path.name != "model":
        return message
    from mrpc_finetune.recipe import recipe_names

    run = path.parent
    if run.name not in recipe_names():
        return f"{message}; it would be the model of run {run}: train that run to its end first"
    default = Path(os.path.abspath(run)) == Path(os.path.abspath(Path("runs") / run.name))
    output = "" if default else f" output_dir={run}"
    return f"{message}; it is the model of a {run.name} run: train it first (mrpc-finetune train {run.name}{output})"


def check_model_source(cfg: ModelConfig) -> None:
    """Before any heavy import: a Hub id with no Hub and no cached copy fails here, in about a second."""
    source = resolve_model_path(cfg.name)
    if Path(source).is_dir() or hub_reachable():
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(source, "config.json", revision=cfg.revision), str):
        raise UserError(
            f"model.name={cfg.name}: the Hugging Face Hub cannot be reached and {cfg.name!r} is not cached; "
            f"{OFFLINE_ROUTE}"
        )


PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
"""Weight files in pickle formats: loading one can run arbitrary code, so they are never loaded."""
VOCABULARY_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "*.model")
"""One of these holds a tokenizer's vocabulary; without one ``AutoTokenizer`` quietly builds a 5-token tokenizer."""


def check_local_model(cfg: ModelConfig, tokenizer=None) -> None:
    """Cheap checks of a local model folder, run before any data is loaded: safetensors weights whose headers
    read, and (given the tokenizer) an embedding with a row for every token id."""
    source = resolve_model_path(cfg.name)
    if source == cfg.name and not Path(source).is_dir():
        return  # a Hub id: checked when it is loaded
    _check_local_weights(Path(source), cfg.name)
    try:
        rows = json.loads((Path(source) / "config.json").read_text()).get("vocab_size")
    except (OSError, ValueError, AttributeError) as err:
        raise UserError(f"model.name={cfg.name}: {source}/config.json cannot be read ({first_line(err)})") from None
    if tokenizer is not None and isinstance(rows, int) and len(tokenizer) > rows:
        raise UserError(_vocab_mismatch(cfg.name, len(tokenizer), rows))


def _check_local_weights(folder: Path, name: str) -> None:
    """A local folder must hold safetensors weights; pickled ones are refused by name, never unpickled."""
    from safetensors import SafetensorError, safe_open

    weights = sorted(folder.glob("*.safetensors"))
    for path in weights:
        try:
            with safe_open(str(path), framework="pt"):  # reads and checks the header only
                pass
        except (OSError, SafetensorError) as err:
            raise UserError(f"model.name={name}: {path} is corrupt or cut off ({first_line(err)})") from None
    if weights:
        return
    pickled = sorted(p.name for pattern in PICKLE_WEIGHTS for p in folder.glob(pattern))
    if pickled:
        raise UserError(
            f"model.name={name}: {folder} holds only pickled weights ({', '.join(pickled)}), which are not loaded "
            f"because unpickling can run arbitrary code; convert them to model.safetensors first "
            f"(load once in a trusted session and call model.save_pretrained(PATH))"
        )
    raise UserError(f"model.name={name}: {folder} has no model weights (no *.safetensors file in it)")


def _check_local_tokenizer(folder: Path, name: str) -> None:
    if not any(p for pattern in VOCABULARY_FILES for p in folder.glob(pattern)):
        raise UserError(
            f"model.name={name}: {folder} has no tokenizer (none of {', '.join(VOCABULARY_FILES)}); "
            f"save the model's tokenizer beside it with tokenizer.save_pretrained(PATH)"
        )


def _from_hub_or_cache(loader, name: str, **kwargs):
    """Load from the Hub when it answers; otherwise only from the local cache, with one clear line on a miss."""
    if hub_reachable():
        return loader(name, **kwargs)
    try:
        return loader(name, local_files_only=True, **kwargs)
    except OSError:
        raise UserError(
            f"model.name={name}: the Hugging Face Hub cannot be reached and {name!r} is not cached; {OFFLINE_ROUTE}"
        ) from None


POSITION_OFFSET_MODELS = ("roberta", "xlm-roberta", "camembert", "data2vec-text", "xmod")
"""Models whose position ids start after the padding id, so ``max_position_embeddings`` counts two extra rows."""


def model_config(cfg: ModelConfig):
    """The checkpoint's transformers config (mean-pooled ones read by this package's class, never the folder's)."""
    from transformers import AutoConfig

    mean_pooling.register_auto_classes()
    source = resolve_model_path(cfg.name)
    kwargs = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code}
    if source != cfg.name or Path(source).is_dir():
        return AutoConfig.from_pretrained(source, **kwargs)
    return _from_hub_or_cache(AutoConfig.from_pretrained, source, **kwargs)


def check_pooler(cfg: ModelConfig) -> None:
    """``model.pooler`` fits the checkpoint (mean pooling: a BERT encoder; a mean-pooled checkpoint: mean)."""
    mean_pooling.check_pooler(cfg.pooler, model_config(cfg), cfg.name)


def max_positions(cfg: ModelConfig) -> int | None:
    """The longest input the model's position embeddings hold (512 for BERT and MiniLM); None if unknown."""
    config = model_config(cfg)
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int):
        return None
    if config.model_type in POSITION_OFFSET_MODELS:
        positions -= (config.pad_token_id or 0) + 1
    return positions


def check_max_length(cfg: ModelConfig, max_length: int) -> None:
    """Inputs longer than the position embeddings would index past them mid-training: refuse before any run."""
    limit = max_positions(cfg)
    if limit is not None and max_length > limit:
        raise UserError(
            f"data.max_length={max_length}: model.name={cfg.name} has {limit} positions (max_position_embeddings "
            f"in its config.json); use data.max_length={limit} or less"
        )


def load_tokenizer(cfg: ModelConfig):
    from transformers import AutoTokenizer

    source = resolve_model_path(cfg.name)
    kwargs = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code}
    if source != cfg.name or Path(source).is_dir():
        _check_local_tokenizer(Path(source), cfg.name)
        try:
            return AutoTokenizer.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as err:
            raise UserError(f"model.name={cfg.name}: cannot load its tokenizer ({first_line(err)})") from None
    return _from_hub_or_cache(AutoTokenizer.from_pretrained, source, **kwargs)


def load_model(cfg: ModelConfig, task: TaskSpec, label_names: tuple[str, ...] | None = None, tokenizer=None):
    """A sequence-classification model with a fresh head sized for the task and its label names."""
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification

    source = resolve_model_path(cfg.name)
    if source != cfg.name or Path(source).is_dir():
        _check_local_weights(Path(source), cfg.name)
    names = task.label_names if label_names is None else label_names
    kwargs = {
        "num_labels": len(names) or 1,
        "id2label": {i: n for i, n in enumerate(names)} if names else {0: "score"},
        "label2id": {n: i for i, n in enumerate(names)} if names else {"score": 0},
        "problem_type": "regression" if not names else "single_label_classification",
        "revision": cfg.revision,
        "trust_remote_code": cfg.trust_remote_code,
        "use_safetensors": True,
        "ignore_mismatched_sizes": _replaces_regression_head(model_config(cfg), len(names) or 1, cfg.name),
        "output_loading_info": True,
    }
    if cfg.dropout is not None:
        kwargs.update(hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout)
    if cfg.classifier_dropout is not None:
        kwargs["classifier_dropout"] = cfg.classifier_dropout
    check_pooler(cfg)
    loader = (
        mean_pooling.from_pretrained if cfg.pooler == "mean" else AutoModelForSequenceClassification.from_pretrained
    )
    try:
        if source != cfg.name or Path(source).is_dir():
            model, loading_info = loader(source, **kwargs)
        else:
            model, loading_info = _from_hub_or_cache(loader, source, **kwargs)
    except (OSError, ValueError, SafetensorError) as err:  # SafetensorError: a truncated or corrupt file
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"model.name={cfg.name}: cannot load a model from it ({first_line})") from None
    if kwargs["ignore_mismatched_sizes"]:
        _check_only_the_head_was_replaced(model, loading_info, cfg.name)
        print(
            f"model.name={cfg.name}: a regression model (1 output); "
            f"its head is replaced by a new {len(names)}-class one"
        )
    if cfg.pooler == "identity":
        _identity_pooler(model)
    if tokenizer is not None:
        check_vocab_fits(tokenizer, model, cfg.name)
    return model


def _replaces_regression_head(config, num_labels: int, name: str) -> bool:
    """True for a checkpoint with a one-output (regression) head and a task with classes: the head is replaced
    by a new one (intermediate-task training: STS-B, then MRPC). A head of any other size than the task's is an
    error; a checkpoint without a sequence-classification head gets a new one, as always."""
    heads = [a for a in config.architectures or [] if a.endswith("ForSequenceClassification")]
    if not heads or config.num_labels == num_labels:
        return False
    if config.num_labels == 1 and num_labels > 1:
        return True
    raise UserError(
        f"model.name={name}: its {heads[0]} head has {config.num_labels} outputs, the task needs {num_labels}; "
        f"start from a model without a classification head (only a 1-output regression head is replaced)"
    )


def _check_only_the_head_was_replaced(model, loading_info: dict, name: str) -> None:
    """``ignore_mismatched_sizes`` would quietly re-initialise any weight of another shape: only the head's may."""
    encoder = f"{model.base_model_prefix}."
    others = sorted(key for key, *_ in loading_info["mismatched_keys"] if key.startswith(encoder))
    if others:
        raise UserError(f"model.name={name}: weights of another shape than the model's: {', '.join(others)}")


def _identity_pooler(model) -> None:
    import torch

    pooler = getattr(model.base_model, "pooler", None)
    dense = getattr(pooler, "dense", None)
    if not isinstance(dense, torch.nn.Linear) or dense.in_features != dense.out_features:
        raise UserError(f"model.pooler=identity: {type(model).__name__} has no square pooler to reset")
    with torch.no_grad():
        torch.nn.init.eye_(dense.weight)
        torch.nn.init.zeros_(dense.bias)


def check_vocab_fits(tokenizer, model, name: str) -> None:
    """A tokenizer with more ids than the embedding has rows would index out of range mid-training."""
    rows = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > rows:
        raise UserError(_vocab_mismatch(name, len(tokenizer), rows))


def _vocab_mismatch(name: str, tokens: int, rows: int) -> str:
    return (
        f"model.name={name}: the tokenizer has {tokens} tokens but the model's embedding "
        f"has {rows} rows; use the tokenizer that was trained with this model"
    )
