"""GLUE WNLI: does the sentence with the pronoun replaced follow from the original?
bert-base-uncased on the Hub's nyu-mll/glue / wnli (635 / 71 rows, train / validation).

Columns: sentence1, sentence2 -> label (0 not_entailment, 1 entailment).
Metric: accuracy.

WNLI's train and validation sets are adversarial to each other: BERT-base models usually score at or
below the majority class (56%) on validation.

Needs the Hub for model and data; offline, point it at local copies in the Hub schema, e.g. DIR/{train,validation}.jsonl:
    mrpc-finetune train wnli model.name=/path/to/bert-base-uncased data.dir=DIR
"""

from mrpc_finetune.recipe import DataConfig, Recipe

# The columns, label names and metric come with the task (mrpc_finetune/tasks.py). Training keeps the defaults:
# batch 32 and 3 epochs as in the BERT paper's GLUE runs, lr 2e-5 (the low end of its grid), mixed precision on GPU.
RECIPE = Recipe(description="bert-base-uncased on GLUE WNLI from the Hub", data=DataConfig(task="wnli"))
