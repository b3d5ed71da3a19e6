"""Hyper-parameter sweep for the mrpc_minilm recipe; prints one line per run (the table in docs/benchmarks.md).

.venv/bin/python bench/sweep_minilm.py DATA_DIR OUT_DIR "train.lr=1e-4 train.epochs=4" "train.lr=2e-4" ...
"""

import json
import sys
import time

from mrpc_finetune import trainer_loop
from mrpc_finetune.recipe import load_recipe


def main(data_dir: str, out_dir: str, *settings: str) -> None:
    for i, setting in enumerate(settings):
        overrides = [f"data.dir={data_dir}", f"output_dir={out_dir}/{i}", "overwrite=true", *setting.split()]
        started = time.perf_counter()
        metrics = trainer_loop.main(load_recipe("mrpc_minilm", overrides))
        row = {
            "setting": setting,
            "minutes": (time.perf_counter() - started) / 60,
            **{k: metrics[k] for k in ("eval_accuracy", "eval_f1", "peak_memory_mb")},
        }
        print("SWEEP", json.dumps(row), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
