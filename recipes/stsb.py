"""GLUE STS-B: how similar are two sentences, scored 0 to 5?
bert-base-uncased on the Hub's nyu-mll/glue / stsb (5,749 / 1,500 rows, train / validation).

Columns: sentence1, sentence2 -> label (a float score (regression: one output, MSE loss)).
Metric: Pearson and Spearman correlation (pearson, spearmanr).

Needs the Hub for model and data; offline, point it at local copies in the Hub schema, e.g. DIR/{train,validation}.jsonl:
    mrpc-finetune train stsb model.name=/path/to/bert-base-uncased data.dir=DIR
"""

from mrpc_finetune.recipe import DataConfig, Recipe

# The columns, label names and metric come with the task (mrpc_finetune/tasks.py). Training keeps the defaults:
# batch 32 and 3 epochs as in the BERT paper's GLUE runs, lr 2e-5 (the low end of its grid), mixed precision on GPU.
RECIPE = Recipe(description="bert-base-uncased on GLUE STS-B from the Hub", data=DataConfig(task="stsb"))
