"""``accelerate launch`` of the Accelerate loop (the loop contract in test_loop_contract.py covers it otherwise): a
2-process gloo run counts every validation row exactly once and ends with the same weights in both processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from mrpc_finetune.cli import main as cli_main
from mrpc_finetune.data import batching, loading, tokenization
from mrpc_finetune.inference.evaluation import evaluate_run
from mrpc_finetune.inference.logits import predict_logits
from mrpc_finetune.inference.scorer import load_run_model
from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.recipe.tasks import get_task
from mrpc_finetune.run import rundir
from mrpc_finetune.train import accelerate_loop

from .conftest import REPO, free_port, mrpc_rows, write_jsonl

pytestmark = pytest.mark.usefixtures("one_torch_thread", "fresh_accelerate_state")


def reset_accelerate_state() -> None:
    """Accelerate keeps process-wide singletons; a new run in the same process (as after a crash) starts clean."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture
def fresh_accelerate_state():
    reset_accelerate_state()
    yield
    reset_accelerate_state()


def test_fsdp_on_a_cpu_stops_before_any_run(monkeypatch, capsys, tiny_overrides, tmp_path):
    """Accelerate shards with FSDP on accelerators only: on a CPU, `accelerate launch --use_fsdp` would stop in
    Accelerator() with a run folder left behind, or train unsharded DDP and say nothing (docs/loops.md)."""
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # what `accelerate launch --use_fsdp` sets in each process
    monkeypatch.setenv("ACCELERATE_USE_CPU", "true")  # the CPU case on a CUDA host as well
    capsys.readouterr()
    code = cli_main(["train", "mrpc_minilm", "loop=accelerate", *tiny_overrides])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: FSDP (accelerate launch --use_fsdp") and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()
    accelerate_loop._refuse_fsdp_on_cpu(cpu=False)  # GPUs: FSDP goes ahead


@pytest.mark.slow  # accelerate launch: two processes
def test_two_processes_evaluate_every_row_once_and_agree(tiny_model_dir, tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    write_jsonl(data_dir / "train.jsonl", mrpc_rows(40, seed=3))
    write_jsonl(data_dir / "validation.jsonl", mrpc_rows(21, seed=4))  # odd: uneven shards would show duplicates
    run = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",  # torchrun-style launcher; on a machine without GPUs the loop runs gloo on CPU
        "--num_processes=2",
        "--num_machines=1",
        "--mixed_precision=no",
        "--dynamo_backend=no",
        f"--main_process_port={free_port()}",
        str(REPO / "tests" / "accelerate_worker.py"),
        "mrpc_minilm",
        f"model.name={tiny_model_dir}",
        f"data.dir={data_dir}",
        f"output_dir={run}",
        "train.batch_size=4",
        "train.max_steps=4",
        "train.lr=1e-3",
        "eval.batch_size=4",  # 21 rows: 6 batches, the last of 1 row, padded out on the second process
        "eval.strategy=steps",
        "eval.steps=2",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["eval_rows"] == 21
    assert metrics["global_step"] == 4  # 40 rows / (4 per batch x 2 processes) = 5 steps per epoch
    hashes = [(tmp_path / f"rank{rank}.sha256").read_text() for rank in range(2)]
    assert hashes[0] == hashes[1]
    assert sorted(p.name for p in (run / "checkpoints" / "checkpoint-4").glob("random_states_*")) == [
        "random_states_0.pkl",
        "random_states_1.pkl",
    ]

    # One process, the saved model, every row: the same numbers as the two processes reported.
    single = evaluate_run(run)
    assert single["eval_rows"] == 21
    assert single["eval_accuracy"] == metrics["eval_accuracy"] and single["eval_f1"] == metrics["eval_f1"]
    tokenizer, model = load_run_model(rundir.RunDir(run))
    recipe = load_recipe(str(run / "recipe.json"))
    validation = loading.load_split_file(data_dir / "validation.jsonl")
    tokenized = tokenization.tokenize_split(validation, tokenizer, get_task("mrpc"), recipe.data)
    logits = predict_logits(model, tokenized, batching.make_collator(tokenizer), batch_size=32, device="cpu")
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.tensor(np.array(tokenized["labels"])))
    assert metrics["eval_loss"] == pytest.approx(loss.item(), rel=1e-5)
