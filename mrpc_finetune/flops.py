"""Model FLOPs of fine-tuning a BERT-style encoder, and the matmul peak they are measured against (MFU).

Model FLOPs utilisation = model FLOPs of the real tokens trained per second / the matmul peak of the device, in
the spirit of PaLM's MFU (Chowdhery et al. 2022, appendix B): padding, recomputation and the optimizer step
are not model FLOPs, so a run that pads every pair to 128 tokens pays for work that does not count.

    from mrpc_finetune import flops
    shape = flops.EncoderShape.from_config(model.config)
    used = flops.training_flops(shape, real_lengths_of_the_rows_trained)
    mfu = used / seconds / flops.matmul_peak_flops(torch.float32, "cpu")
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class EncoderShape:
    """The sizes that set a BERT-style encoder's FLOPs (BERT, RoBERTa, MiniLM, ... with a pooler + linear head)."""

    layers: int
    """Transformer layers (``num_hidden_layers``)."""
    hidden: int
    """Model width d (``hidden_size``)."""
    intermediate: int
    """Feed-forward width (``intermediate_size``)."""
    num_labels: int = 2
    """Outputs of the classification head."""
    pooler: bool = True
    """Whether a pooler (dense + tanh over [CLS]) feeds the head; False for ``model.pooler=mean``, whose head reads
    the mean of the tokens (its sum is d adds per token, not a matmul: not counted)."""

    @classmethod
    def from_config(cls, config) -> EncoderShape:
        """From a transformers config (``BertConfig`` and the configs that share its field names); a mean-pooled
        model's config says ``pooling="mean"``."""
        pooler = getattr(config, "pooling", None) != "mean"
        return cls(config.num_hidden_layers, config.hidden_size, config.intermediate_size, config.num_labels, pooler)

    @property
    def layer_params(self) -> int:
        """One layer: Q, K, V and output projections (d x d + bias each), the feed-forward pair, two LayerNorms."""
        d, f = self.hidden, self.intermediate
        return 4 * (d * d + d) + (d * f + f) + (f * d + d) + 2 * (2 * d)

    @property
    def encoder_params(self) -> int:
        """Non-embedding parameters applied to every token: all the layers."""
        return self.layers * self.layer_params

    @property
    def head_params(self) -> int:
        """Pooler (d x d + bias, if any) and classifier (d x labels + bias), applied once per sequence."""
        d = self.hidden
        return (d * d + d if self.pooler else 0) + d * self.num_labels + self.num_labels


def sequence_training_flops(shape: EncoderShape, length: int) -> int:
    """Forward + backward FLOPs of one sequence of ``length`` real tokens (no padding).

    A weight used once per token costs 2 FLOPs (multiply, add) forward and twice that backward (the gradients
    of its input and of itself): 6 x params per token, the usual 6N rule over the non-embedding parameters
    (embedding lookups are not matmuls). Attention adds two matmuls per layer whose size grows with the
    length: scores Q K^T and the weighted sum of V, each n x n x d multiply-adds, so 4 n^2 d FLOPs forward and
    12 n^2 d forward + backward per layer. The pooler and the head run once per sequence.

        6 * encoder_params * n  +  12 * layers * hidden * n^2  +  6 * head_params
    """
    n = length
    return 6 * shape.encoder_params * n + 12 * shape.layers * shape.hidden * n * n + 6 * shape.head_params


def training_flops(shape: EncoderShape, lengths: Iterable[int]) -> int:
    """Forward + backward FLOPs of training on sequences of these real lengths (see ``sequence_training_flops``)."""
    return sum(sequence_training_flops(shape, n) for n in lengths)


DEFAULT_PEAK_SIZE = {"cpu": 2048, "cuda": 8192}
"""Square matmul size per device type: large enough to reach the device's plateau, small enough to take < 1 s."""


def matmul_peak_flops(dtype=None, device: str = "cpu", size: int | None = None, trials: int = 5) -> float:
    """The best FLOP/s of a square ``size`` x ``size`` matmul in ``dtype`` on ``device`` over ``trials`` timings.

    Each timing repeats the matmul for about 0.2 s (after an untimed warm-up) and counts 2 size^3 FLOPs per
    product. The best trial is the device's attainable peak under the current thread settings: the denominator
    of MFU, measured in the same run as the throughput it divides.
    """
    import torch

    dtype = dtype or torch.float32
    kind = torch.device(device).type
    size = size or DEFAULT_PEAK_SIZE.get(kind, 2048)
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=generator).to(device=device, dtype=dtype) for _ in range(2))
    out = torch.empty_like(a)

    def sync():
        if kind == "cuda":
            torch.cuda.synchronize(device)

    def seconds_for(repeats: int) -> float:
        sync()
        began = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b, out=out)
        sync()
        return time.perf_counter() - began

    seconds_for(2)  # warm-up: kernels chosen, caches and clocks up
    repeats = max(1, round(0.2 / max(seconds_for(1), 1e-6)))
    best = max(repeats / seconds_for(repeats) for _ in range(trials))
    return 2 * size**3 * best
