"""Start-up time and the map cache: a real ``mrpc-finetune train`` in a subprocess, timed to its first step."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Runs the CLI as `mrpc-finetune train ...` would, stamping the first training step and recording what each
# tokenized split was loaded from; it changes nothing else.
STARTUP_PROBE = """
import json, sys, time
import transformers
from mrpc_finetune import cli
from mrpc_finetune.data import tokenization
first_step, tokenized = [], {}
step = transformers.Trainer.training_step
def stamped_step(self, *args, **kwargs):
    if not first_step:
        first_step.append(time.time())
    return step(self, *args, **kwargs)
transformers.Trainer.training_step = stamped_step
tokenize = tokenization.tokenize_split
def recorded_tokenize(dataset, *args, **kwargs):
    out = tokenize(dataset, *args, **kwargs)
    tokenized[out._fingerprint] = sorted(f["filename"] for f in out.cache_files)
    return out
tokenization.tokenize_split = recorded_tokenize
code = cli.main(sys.argv[1:])
print("STARTUP_PROBE " + json.dumps({"first_step": first_step[0] if first_step else None, "tokenized": tokenized, "exit": code}))
"""


def probe_startup(train_args: list[str]) -> dict:
    """One ``mrpc-finetune train ...`` in a fresh interpreter: seconds from launch to its first training step."""
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}  # the "Tokenizing" bar must show if it runs
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    launched = time.time()
    done = subprocess.run(
        [sys.executable, "-c", STARTUP_PROBE, "train", *train_args], capture_output=True, text=True, env=env
    )
    finished = time.time()
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("STARTUP_PROBE ")), None)
    if done.returncode != 0 or line is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError("start-up probe failed: " + " | ".join(tail))
    probe = json.loads(line.split(" ", 1)[1])
    return {
        "seconds_to_first_step": probe["first_step"] - launched,
        "total_seconds": finished - launched,
        "tokenized": probe["tokenized"],
        "tokenizing_bar_shown": bool(re.search(r"^\s*Tokenizing", done.stderr, flags=re.MULTILINE)),
    }


def measure_startup(data_dir: str, model: str, workdir: str) -> dict:
    """Two runs of ``train mrpc_minilm ... train.max_steps=1``: the second must find every split in the map cache."""
    train_args = ["mrpc_minilm", f"model.name={model}", f"data.dir={data_dir}", "train.max_steps=1"]
    first = probe_startup([*train_args, f"output_dir={workdir}/startup1", "overwrite=true"])
    second = probe_startup([*train_args, f"output_dir={workdir}/startup2", "overwrite=true"])
    return {
        "command": "mrpc-finetune train " + " ".join(train_args),
        "first_run": first,
        "warm_run": second,
        "retokenized_nothing": first["tokenized"] == second["tokenized"] and not second["tokenizing_bar_shown"],
    }
