"""GLUE SST-2: the sentiment of a movie-review sentence
bert-base-uncased on the Hub's nyu-mll/glue / sst2 (67,349 / 872 rows, train / validation).

Columns: sentence -> label (0 negative, 1 positive).
Metric: accuracy.

Needs the Hub for model and data; offline, point it at local copies in the Hub schema, e.g. DIR/{train,validation}.jsonl:
    mrpc-finetune train sst2 model.name=/path/to/bert-base-uncased data.dir=DIR
"""

from mrpc_finetune.recipe import DataConfig, Recipe

# The columns, label names and metric come with the task (mrpc_finetune/tasks.py). Training keeps the defaults:
# batch 32 and 3 epochs as in the BERT paper's GLUE runs, lr 2e-5 (the low end of its grid), mixed precision on GPU.
RECIPE = Recipe(description="bert-base-uncased on GLUE SST-2 from the Hub", data=DataConfig(task="sst2"))
