"""A BERT sequence classifier that reads the mean of the encoder's last hidden states, not the pooler over [CLS].

Written by mrpc_finetune (``model.pooler=mean``) and copied next to the weights by ``save_pretrained``, so that a
saved model loads without mrpc_finetune installed:

    from transformers import AutoModelForSequenceClassification
    model = AutoModelForSequenceClassification.from_pretrained(FOLDER_OR_REPO_ID, trust_remote_code=True)

It imports torch and transformers only. Without ``trust_remote_code=True`` transformers refuses to load it (its
``model_type`` is none of transformers' own): it never falls back to a [CLS] classifier that would predict
otherwise.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import BertConfig
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.bert.modeling_bert import BertModel, BertPreTrainedModel
from transformers.utils import can_return_tuple


class MeanPooledBertConfig(BertConfig):
    """A ``BertConfig`` under its own ``model_type``, which transformers does not know, so that loading asks for
    this file's code instead of building ``BertForSequenceClassification`` from the same weights."""

    model_type = "mrpc_finetune_mean_pooled_bert"
    pooling: str = "mean"
    """What the classifier reads: the mean of the last hidden states over the tokens the attention mask keeps."""


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean over the sequence of ``hidden`` (batch x tokens x width), padding excluded: sentence-transformers'
    mean pooling, which all-MiniLM-L6-v2 and its kin were trained with."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


class MeanPooledBertForSequenceClassification(BertPreTrainedModel):
    """``BertForSequenceClassification`` with the mean of the tokens in place of its pooler (which it does not have).

    Dropout and the linear classifier read the mean directly, as a sentence-transformers embedding is used: a
    dense + tanh layer in between would be a fresh, untrained layer in front of the head, the very thing mean
    pooling avoids for checkpoints whose pooler was never trained. ``classifier_dropout`` (else
    ``hidden_dropout_prob``) is the dropout, as in ``BertForSequenceClassification``; so is the loss.
    """

    config_class = MeanPooledBertConfig

    def __init__(self, config: MeanPooledBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.bert = BertModel(config, add_pooling_layer=False)
        dropout = config.classifier_dropout if config.classifier_dropout is not None else config.hidden_dropout_prob
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutput:
        outputs = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            position_ids=position_ids,
            inputs_embeds=inputs_embeds,
            return_dict=True,
            **kwargs,
        )
        logits = self.classifier(self.dropout(masked_mean(outputs.last_hidden_state, attention_mask)))
        loss = None if labels is None else self._loss(logits, labels)
        return SequenceClassifierOutput(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``BertForSequenceClassification``'s loss: MSE for regression, cross-entropy for single labels, BCE for
        multiple labels, the problem type inferred from the labels when the config sets none."""
        if self.config.problem_type is None:
            if self.num_labels == 1:
                self.config.problem_type = "regression"
            elif labels.dtype in (torch.long, torch.int):
                self.config.problem_type = "single_label_classification"
            else:
                self.config.problem_type = "multi_label_classification"
        if self.config.problem_type == "regression":
            if self.num_labels == 1:
                return nn.functional.mse_loss(logits.squeeze(), labels.squeeze())
            return nn.functional.mse_loss(logits, labels)
        if self.config.problem_type == "single_label_classification":
            return nn.functional.cross_entropy(logits.view(-1, self.num_labels), labels.view(-1))
        return nn.functional.binary_cross_entropy_with_logits(logits, labels)


# save_pretrained writes this file beside the weights and names both classes in config.json's auto_map.
MeanPooledBertConfig.register_for_auto_class()
MeanPooledBertForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
