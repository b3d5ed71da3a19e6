"""GLUE CoLA: is an English sentence grammatical?
bert-base-uncased on the Hub's nyu-mll/glue / cola (8,551 / 1,043 rows, train / validation).

Columns: sentence -> label (0 unacceptable, 1 acceptable).
Metric: Matthews correlation (matthews_correlation).

Needs the Hub for model and data; offline, point it at local copies in the Hub schema, e.g. DIR/{train,validation}.jsonl:
    mrpc-finetune train cola model.name=/path/to/bert-base-uncased data.dir=DIR
"""

from mrpc_finetune.recipe import DataConfig, Recipe

# The columns, label names and metric come with the task (mrpc_finetune/tasks.py). Training keeps the defaults:
# batch 32 and 3 epochs as in the BERT paper's GLUE runs, lr 2e-5 (the low end of its grid), mixed precision on GPU.
RECIPE = Recipe(description="bert-base-uncased on GLUE CoLA from the Hub", data=DataConfig(task="cola"))
