"""Precision and padding chosen from the hardware: bf16 where the GPU supports it, else fp16 on CUDA, fp32 on CPU."""

from __future__ import annotations

from mrpc_finetune.errors import UserError


def select_precision(requested: str, cuda_available: bool | None = None, bf16_supported: bool | None = None) -> str:
    """Resolve ``train.precision`` (auto, bf16, fp16, fp32) to what this machine will run."""
    import torch

    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if requested == "auto":
        if not cuda:
            return "fp32"
        bf16 = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
        return "bf16" if bf16 else "fp16"
    if requested in ("bf16", "fp16") and not cuda:
        raise UserError(f"train.precision={requested} needs a CUDA GPU; none is visible (use precision=auto or fp32)")
    return requested


def use_tf32(cuda_available: bool | None = None, capability: tuple[int, int] | None = None) -> bool:
    """TF32 matmuls on Ampere (compute capability 8.0) and newer; they keep fp32 range with a 10-bit mantissa."""
    import torch

    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if not cuda:
        return False
    major, _ = torch.cuda.get_device_capability() if capability is None else capability
    return major >= 8


def pad_to_multiple_of(precision: str) -> int | None:
    """Tensor cores want sequence lengths that are multiples of 8 under bf16/fp16; on CPU padding only costs."""
    return 8 if precision in ("bf16", "fp16") else None
