"""Precision and padding are chosen from the hardware; the GPU branches are checked without a GPU."""

import pytest

from mrpc_finetune.errors import UserError
from mrpc_finetune.hardware import cpu_precision_note, pad_to_multiple_of, select_precision, use_tf32


def test_auto_precision_per_hardware():
    assert select_precision("auto", cuda_available=False) == "fp32"
    assert select_precision("auto", cuda_available=True, bf16_supported=True) == "bf16"
    assert select_precision("auto", cuda_available=True, bf16_supported=False) == "fp16"
    assert select_precision("fp32", cuda_available=True) == "fp32"


def test_mixed_precision_on_a_cpu_runs_where_the_loop_can():
    """bf16 in every loop and fp16 in the torch loop run on a CPU (to check the path); fp16 in the loops built on
    Accelerate, which has no CPU fp16, is refused with the reason. ``auto`` still picks fp32 on a CPU."""
    for loop in ("trainer", "torch", "accelerate", None):
        assert select_precision("bf16", cuda_available=False, loop=loop) == "bf16"
    assert select_precision("fp16", cuda_available=False, loop="torch") == "fp16"
    for loop in ("trainer", "accelerate"):
        with pytest.raises(UserError, match=f"fp16 with loop={loop} on a CPU: Accelerate runs fp16 .* only on a GPU"):
            select_precision("fp16", cuda_available=False, loop=loop)
        assert select_precision("fp16", cuda_available=True, loop=loop) == "fp16"


def test_a_cpu_run_under_mixed_precision_says_what_it_is_for():
    assert "faster than fp32 only on CPUs with bf16 units" in cpu_precision_note("bf16", cuda_available=False)
    assert "to check it, not for speed" in cpu_precision_note("fp16", cuda_available=False)
    assert cpu_precision_note("bf16", cuda_available=True) is None
    assert cpu_precision_note("fp32", cuda_available=False) is None


def test_tf32_from_ampere_on():
    assert use_tf32(cuda_available=True, capability=(8, 0))
    assert use_tf32(cuda_available=True, capability=(9, 0))
    assert not use_tf32(cuda_available=True, capability=(7, 5))
    assert not use_tf32(cuda_available=False)


def test_pad_multiple_only_under_mixed_precision():
    assert pad_to_multiple_of("bf16") == 8 and pad_to_multiple_of("fp16") == 8
    assert pad_to_multiple_of("fp32") is None


@pytest.mark.parametrize(("precision", "tf32"), [("bf16", True), ("fp16", False), ("bf16", False)])
def test_training_arguments_under_mixed_precision(monkeypatch, tmp_path, precision, tf32):
    """TrainingArguments refuses bf16 and tf32 on a CPU-only machine, so its hardware probes are made to say yes
    (and the global TF32 switch is recorded, not flipped); the object checked is the real one."""
    import transformers.training_args

    from mrpc_finetune import hardware
    from mrpc_finetune.recipe import load_recipe
    from mrpc_finetune.train import trainer_loop

    switched = []
    monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda: True)
    monkeypatch.setattr(transformers.training_args, "is_torch_tf32_available", lambda: True)
    monkeypatch.setattr(transformers.training_args, "enable_tf32", switched.append)
    monkeypatch.setattr(hardware, "use_tf32", lambda *args, **kwargs: tf32)
    args = trainer_loop.training_arguments(load_recipe("mrpc"), tmp_path, precision=precision)
    assert (args.bf16, args.fp16) == (precision == "bf16", precision == "fp16")
    assert args.tf32 is (True if tf32 else None) and switched == ([True] if tf32 else [])


@pytest.mark.parametrize(("precision", "multiple"), [("bf16", 8), ("fp16", 8), ("fp32", None)])
def test_pipeline_pads_to_multiple_of_8_under_mixed_precision(tiny_overrides, precision, multiple):
    from mrpc_finetune.recipe import load_recipe
    from mrpc_finetune.train.preparation import prepare

    # the torch loop runs all three precisions on a CPU and on a GPU alike
    overrides = [*tiny_overrides, f"train.precision={precision}", "loop=torch"]
    prepared = prepare(load_recipe("mrpc_minilm", overrides), with_model=False)
    assert prepared.precision == precision and prepared.collator.pad_to_multiple_of == multiple
    train = prepared.splits["train"]
    width = prepared.collator([train[i] for i in range(5)])["input_ids"].shape[1]
    longest = max(len(train[i]["input_ids"]) for i in range(5))
    assert longest % 8  # so the rounding shows
    assert width == (-(-longest // 8) * 8 if multiple else longest)
