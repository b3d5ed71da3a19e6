"""``model.pooler=mean``: a BERT checkpoint under a classifier that reads the mean of its tokens, saved as a custom
architecture (``modeling_mean_pooled_bert.py``, standalone, copied next to the weights).

This package registers that architecture with transformers' Auto classes, so that loading a saved folder here
(eval, predict, resume, ``model.name=RUN/model``) runs this package's class and never the copy of the code in the
folder; elsewhere the folder loads only with ``trust_remote_code=True``. May import ``errors`` alone;
``modeling_mean_pooled_bert.py`` must import nothing of this package (it travels with the weights).
"""

from __future__ import annotations

from mrpc_finetune.errors import UserError

MODEL_TYPE = "mrpc_finetune_mean_pooled_bert"
"""``model_type`` of a saved mean-pooled model (``MeanPooledBertConfig.model_type``)."""
ENCODER_TYPES = ("bert",)
"""Checkpoint ``model_type``s whose weights the mean-pooled class loads: BERT's (all-MiniLM-L6-v2 is one), and its
own, to fine-tune a mean-pooled run further."""


def register_auto_classes() -> None:
    """Let ``AutoConfig`` and ``AutoModelForSequenceClassification`` load mean-pooled folders with this package's
    class (transformers prefers a registered class to a folder's code; idempotent)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from mrpc_finetune.mean_pooling.modeling_mean_pooled_bert import (
        MeanPooledBertConfig,
        MeanPooledBertForSequenceClassification,
    )

    AutoConfig.register(MODEL_TYPE, MeanPooledBertConfig, exist_ok=True)
    AutoModelForSequenceClassification.register(
        MeanPooledBertConfig, MeanPooledBertForSequenceClassification, exist_ok=True
    )


def check_pooler(pooler: str, config, name: str) -> None:
    """``model.pooler=mean`` needs a BERT checkpoint (or a mean-pooled one), and a mean-pooled checkpoint needs
    ``model.pooler=mean``: otherwise one line naming ``model.pooler``, before any data is read."""
    model_type = getattr(config, "model_type", None)
    if pooler == "mean" and model_type not in (*ENCODER_TYPES, MODEL_TYPE):
        raise UserError(
            f"model.pooler=mean: model.name={name} is a {model_type!r} model; mean pooling is built on BERT's "
            f"encoder (model_type {', '.join(ENCODER_TYPES)}, e.g. all-MiniLM-L6-v2) only; use model.pooler=pretrained"
        )
    if pooler != "mean" and model_type == MODEL_TYPE:
        raise UserError(
            f"model.pooler={pooler}: model.name={name} is a mean-pooled model (it has no [CLS] pooler); "
            f"use model.pooler=mean to train it further"
        )


def from_pretrained(source: str, **kwargs):
    """``AutoModelForSequenceClassification.from_pretrained``'s counterpart for ``model.pooler=mean``: the
    checkpoint's config, with ``kwargs`` applied (labels, dropout), as a ``MeanPooledBertConfig``, and its encoder
    weights under a new classifier. The checkpoint's [CLS] pooler weights, if any, are left out (unused)."""
    from transformers import AutoConfig

    from mrpc_finetune.mean_pooling.modeling_mean_pooled_bert import (
        MeanPooledBertConfig,
        MeanPooledBertForSequenceClassification,
    )

    register_auto_classes()
    loading = {key: kwargs.pop(key) for key in ("revision", "local_files_only") if key in kwargs}
    config_loading = dict(loading)
    loading.update(
        {key: kwargs.pop(key) for key in ("ignore_mismatched_sizes", "output_loading_info") if key in kwargs}
    )
    use_safetensors = kwargs.pop("use_safetensors", None)
    # kwargs: trust_remote_code, labels, dropout
    config = AutoConfig.from_pretrained(source, **config_loading, **kwargs)
    check_pooler("mean", config, source)
    fields = {key: value for key, value in config.to_dict().items() if key not in ("model_type", "auto_map")}
    return MeanPooledBertForSequenceClassification.from_pretrained(
        source, config=MeanPooledBertConfig(**fields), use_safetensors=use_safetensors, **loading
    )
