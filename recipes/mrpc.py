"""The reference workflow (Hugging Face course, chapter 3): bert-base-uncased on GLUE MRPC from the Hub.

Needs the Hub for model and data; offline, point it at local copies:
    mrpc-finetune train mrpc model.name=/path/to/bert-base-uncased data.dir=DIR
"""

from mrpc_finetune.recipe import Recipe

# The defaults are the usual MRPC setting from the BERT paper: batch 32, lr 2e-5, 3 epochs (345 steps),
# mixed precision on GPU, fp32 on CPU.
RECIPE = Recipe(description="bert-base-uncased on GLUE MRPC from the Hub (the reference workflow)")
