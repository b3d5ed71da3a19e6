"""flops: the training-FLOP arithmetic against a hand-computed tiny encoder, and the matmul peak measurement."""

from __future__ import annotations

import pytest
import torch

from mrpc_finetune import flops

TINY = flops.EncoderShape(layers=2, hidden=4, intermediate=8, num_labels=2)


def test_tiny_encoder_flops_by_hand():
    # one layer: Q K V O 4 x (4*4 + 4) = 80; feed-forward 4*8 + 8 + 8*4 + 4 = 76; two LayerNorms 2 x (4 + 4) = 16
    assert TINY.layer_params == 80 + 76 + 16 == 172
    assert TINY.encoder_params == 2 * 172
    assert TINY.head_params == (16 + 4) + (8 + 2) == 30
    # n = 3: 6*344*3 + 12*2*4*9 + 6*30 = 6192 + 864 + 180
    assert flops.sequence_training_flops(TINY, 3) == 7236
    # n = 5: 6*344*5 + 12*2*4*25 + 6*30 = 10320 + 2400 + 180
    assert flops.sequence_training_flops(TINY, 5) == 12900
    assert flops.training_flops(TINY, [3, 5]) == 7236 + 12900
    assert flops.training_flops(TINY, []) == 0


def test_attention_term_grows_with_the_square_of_the_length():
    """Padding is not counted: one 10-token row costs more than two 5-token rows (the n^2 attention term)."""
    one_long = flops.training_flops(TINY, [10])
    two_short = flops.training_flops(TINY, [5, 5])
    assert one_long - two_short == 12 * 2 * 4 * (100 - 50) - 6 * TINY.head_params


def test_parameter_counts_match_a_real_bert():
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48, num_labels=3
    )
    model = BertForSequenceClassification(config)
    shape = flops.EncoderShape.from_config(config)
    assert shape == flops.EncoderShape(layers=3, hidden=32, intermediate=48, num_labels=3)
    encoder = sum(p.numel() for p in model.bert.encoder.parameters())
    head = sum(p.numel() for p in model.bert.pooler.parameters()) + sum(
        p.numel() for p in model.classifier.parameters()
    )
    embeddings = sum(p.numel() for p in model.bert.embeddings.parameters())
    assert shape.encoder_params == encoder
    assert shape.head_params == head
    assert encoder + head + embeddings == sum(p.numel() for p in model.parameters())


def test_a_mean_pooled_model_counts_no_pooler():
    from mrpc_finetune.mean_pooling.modeling_mean_pooled_bert import (
        MeanPooledBertConfig,
        MeanPooledBertForSequenceClassification,
    )

    config = MeanPooledBertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=48, num_labels=3
    )
    model = MeanPooledBertForSequenceClassification(config)
    shape = flops.EncoderShape.from_config(config)
    assert not shape.pooler
    assert shape.head_params == sum(p.numel() for p in model.classifier.parameters()) == 32 * 3 + 3
    embeddings = sum(p.numel() for p in model.bert.embeddings.parameters())
    assert shape.encoder_params + shape.head_params + embeddings == sum(p.numel() for p in model.parameters())


def test_matmul_peak_is_a_plausible_rate(one_torch_thread):
    peak = flops.matmul_peak_flops(torch.float32, "cpu", size=128, trials=2)
    assert 1e8 < peak < 1e13  # between 0.1 GFLOP/s and 10 TFLOP/s for one CPU thread


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_matmul_peak_on_cuda_in_bf16():
    assert flops.matmul_peak_flops(torch.bfloat16, "cuda", size=1024, trials=2) > 1e11
