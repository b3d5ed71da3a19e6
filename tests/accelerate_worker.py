"""Run by `accelerate launch` in test_accelerate_loop.py: train with the Accelerate loop, then write a hash of
this process's final weights to RUN/../rank<N>.sha256, so the test can check that every process holds the same model.

accelerate launch --multi_gpu --num_processes 2 tests/accelerate_worker.py mrpc_minilm KEY=VALUE ...
"""

import hashlib
import sys

from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.train import accelerate_loop

recipe = load_recipe(sys.argv[1], sys.argv[2:])
accelerator, model, _ = accelerate_loop.train(recipe)
digest = hashlib.sha256()
for name, tensor in sorted(accelerator.unwrap_model(model).state_dict().items()):
    digest.update(name.encode())
    digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
(recipe.run_dir.parent / f"rank{accelerator.process_index}.sha256").write_text(digest.hexdigest())
