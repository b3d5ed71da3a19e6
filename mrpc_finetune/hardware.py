"""Precision and padding chosen from the hardware: bf16 where the GPU supports it, else fp16 on CUDA, fp32 on CPU.

On a CPU, bf16 runs in every loop and fp16 in the torch loop (autocast + ``torch.amp.GradScaler("cpu")``), to check
those paths where no GPU is at hand; ``auto`` still picks fp32 there.
"""

from __future__ import annotations

from mrpc_finetune.errors import UserError

CPU_FP16_LOOPS = ("torch",)
"""Loops that run fp16 on a CPU. Accelerate 1.15 (which the Trainer runs on too) makes no autocast and no
``GradScaler`` for fp16 on a CPU (``Accelerator.__init__``: ``mixed_precision == "fp16" and device.type != "cpu"``),
so those loops would train in fp32 under an fp16 label: they refuse instead."""


def select_precision(
    requested: str, cuda_available: bool | None = None, bf16_supported: bool | None = None, loop: str | None = None
) -> str:
    """Resolve ``train.precision`` (auto, bf16, fp16, fp32) to what this machine will run in ``loop``."""
    import torch

    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if requested == "auto":
        if not cuda:
            return "fp32"
        bf16 = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
        return "bf16" if bf16 else "fp16"
    if requested == "fp16" and not cuda and loop is not None and loop not in CPU_FP16_LOOPS:
        raise UserError(
            f"train.precision=fp16 with loop={loop} on a CPU: Accelerate runs fp16 autocast and its GradScaler only on "
            "a GPU, so this would train in fp32; use loop=torch (fp16 autocast + GradScaler on the CPU) or bf16"
        )
    return requested


def cpu_precision_note(precision: str, cuda_available: bool | None = None) -> str | None:
    """The line a bf16/fp16 run on a CPU prints: what that path costs there (docs/benchmarks.md measured both)."""
    import torch

    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if cuda or precision not in ("bf16", "fp16"):
        return None
    if precision == "bf16":
        return (
            "note: train.precision=bf16 on a CPU: bf16 autocast is faster than fp32 only on CPUs with bf16 units "
            "(AVX512-BF16, AMX), slower on others (docs/loops.md#mixed-precision)"
        )
    return (
        "note: train.precision=fp16 on a CPU runs the fp16 autocast and GradScaler path to check it, not for speed: "
        "CPUs have no fast fp16 matmuls, so it is many times slower than fp32 (docs/loops.md#mixed-precision)"
    )


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
