"""GLUE QQP: do two Quora questions ask the same thing?
bert-base-uncased on the Hub's nyu-mll/glue / qqp (363,846 / 40,430 rows, train / validation).

Columns: question1, question2 -> label (0 not_duplicate, 1 duplicate).
Metric: accuracy and F1.

Needs the Hub for model and data; offline, point it at local copies in the Hub schema, e.g. DIR/{train,validation}.jsonl:
    mrpc-finetune train qqp model.name=/path/to/bert-base-uncased data.dir=DIR
"""

from mrpc_finetune.recipe import DataConfig, Recipe

# The columns, label names and metric come with the task (mrpc_finetune/tasks.py). Training keeps the defaults:
# batch 32 and 3 epochs as in the BERT paper's GLUE runs, lr 2e-5 (the low end of its grid), mixed precision on GPU.
RECIPE = Recipe(description="bert-base-uncased on GLUE QQP from the Hub", data=DataConfig(task="qqp"))
