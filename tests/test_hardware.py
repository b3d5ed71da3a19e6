"""Precision and padding are chosen from the hardware; the GPU branches are checked without a GPU."""

import pytest

from mrpc_finetune.errors import UserError
from mrpc_finetune.hardware import pad_to_multiple_of, select_precision, use_tf32


def test_auto_precision_per_hardware():
    assert select_precision("auto", cuda_available=False) == "fp32"
    assert select_precision("auto", cuda_available=True, bf16_supported=True) == "bf16"
    assert select_precision("auto", cuda_available=True, bf16_supported=False) == "fp16"
    assert select_precision("fp32", cuda_available=True) == "fp32"


def test_mixed_precision_without_gpu_is_an_error():
    with pytest.raises(UserError, match="train.precision=bf16 needs a CUDA GPU"):
        select_precision("bf16", cuda_available=False)


def test_tf32_from_ampere_on():
    assert use_tf32(cuda_available=True, capability=(8, 0))
    assert use_tf32(cuda_available=True, capability=(9, 0))
    assert not use_tf32(cuda_available=True, capability=(7, 5))
    assert not use_tf32(cuda_available=False)


def test_pad_multiple_only_under_mixed_precision():
    assert pad_to_multiple_of("bf16") == 8 and pad_to_multiple_of("fp16") == 8
    assert pad_to_multiple_of("fp32") is None
