"""MRPC on all-MiniLM-L6-v2 after STS-B (less its MSRpar pairs): stage 2 of the STS-B -> MRPC chain. It starts
from the model stage 1 (recipes/stsb_minilm_msrfree.py) leaves in runs/stsb_minilm_msrfree/model, relative to the
working folder; its regression head (1 output) is replaced by a new 2-class head. mrpc_minilm stays the one-step
recipe; docs/recipes.md, "An intermediate task: STS-B, then MRPC", compares them.

    mrpc-finetune train stsb_minilm_msrfree data.dir=GLUE/stsb
    mrpc-finetune train mrpc_minilm_stsb data.dir=MRPC
    mrpc-finetune train mrpc_minilm_stsb data.dir=MRPC model.name=OTHER_RUN/model   # any other stage-1 run
"""

from mrpc_finetune.recipe import ModelConfig, Recipe, TrainConfig

RECIPE = Recipe(
    description="all-MiniLM-L6-v2 trained on STS-B without MSRpar (stsb_minilm_msrfree), then on MRPC as mrpc_minilm",
    model=ModelConfig(
        name="runs/stsb_minilm_msrfree/model",
        # mrpc_minilm starts the pooler as tanh([CLS]) because the packaged encoder's pooler never trained; stage 1
        # started it that way and trained it on STS-B, so it is kept as stage 1 left it.
        pooler="pretrained",
        dropout=0.0,
    ),
    # mrpc_minilm's hyper-parameters (its search's best), not searched again for this start.
    train=TrainConfig(lr=8.8e-5, warmup_ratio=0.13, epochs=4, layer_lr_decay=0.79),
)
