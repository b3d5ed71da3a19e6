"""GLUE MNLI: does the premise entail, contradict or leave open the hypothesis?
bert-base-uncased on the Hub's nyu-mll/glue / mnli (392,702 / 9,815 + 9,832 rows, train / validation).

Columns: premise, hypothesis -> label (0 entailment, 1 neutral, 2 contradiction).
Metric: accuracy on validation_matched and validation_mismatched (the first picks the best checkpoint).

Needs the Hub for model and data; offline, point it at local copies in the Hub schema, e.g. DIR/{train,validation_matched,validation_mismatched}.jsonl:
    mrpc-finetune train mnli model.name=/path/to/bert-base-uncased data.dir=DIR
"""

from mrpc_finetune.recipe import DataConfig, Recipe

# The columns, label names and metric come with the task (mrpc_finetune/tasks.py). Training keeps the defaults:
# batch 32 and 3 epochs as in the BERT paper's GLUE runs, lr 2e-5 (the low end of its grid), mixed precision on GPU.
RECIPE = Recipe(description="bert-base-uncased on GLUE MNLI from the Hub", data=DataConfig(task="mnli"))
