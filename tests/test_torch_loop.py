"""The plain PyTorch loop on a tiny random BERT (CPU, seconds): smoke run, exact resume, gradient accumulation."""

from __future__ import annotations

import pytest

from mrpc_finetune import torch_loop
from mrpc_finetune.recipe import load_recipe

from .loop_checks import check_accumulation, check_resume, check_smoke

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_torch_loop_smoke(tiny_overrides, tiny_model_dir, trainer_reference):
    recipe = load_recipe("mrpc_minilm", [*tiny_overrides, "loop=torch"])
    check_smoke(torch_loop.main, recipe, tiny_model_dir, trainer_reference)


def test_torch_loop_resume_matches_unbroken_run(tiny_overrides, tmp_path, monkeypatch):
    check_resume(torch_loop, [*tiny_overrides, "loop=torch"], tmp_path, monkeypatch)


def test_torch_loop_accumulation_matches_large_batch(tiny_overrides, tmp_path, monkeypatch):
    check_accumulation(torch_loop.main, [*tiny_overrides, "loop=torch"], tmp_path, monkeypatch)
