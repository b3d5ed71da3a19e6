"""The model card's "How to use" section: what the classifier reads (``model.pooler``) and how to load the model,
which for mean pooling means its own code file and ``trust_remote_code=True``."""

from __future__ import annotations

from mrpc_finetune.recipe.tasks import TaskSpec

POOLING = {
    "pretrained": "the checkpoint's pooler (dense + tanh) over the [CLS] token (`model.pooler=pretrained`)",
    "identity": "a pooler (dense + tanh) over the [CLS] token, started as tanh([CLS]) (`model.pooler=identity`)",
    "mean": (
        "the mean of the encoder's last hidden states over the real tokens, padding excluded "
        "(`model.pooler=mean`, the pooling sentence-transformers trains with); there is no [CLS] pooler"
    ),
}
"""What the classifier reads, per ``model.pooler``, in the card's words."""


def usage_section(task: TaskSpec, pooler: str = "pretrained") -> str:
    pair = len(task.text_columns) == 2
    example = '{"text": "first sentence", "text_pair": "second sentence"}' if pair else '"some text"'
    lines = ["## How to use", "", f"Pooling: the classifier reads {POOLING[pooler]}.", ""]
    remote = ", trust_remote_code=True" if pooler == "mean" else ""
    if pooler == "mean":
        lines += [
            "This architecture is not one of transformers' own: its code, `modeling_mean_pooled_bert.py` (torch and "
            "transformers only), is in this folder, so loading it takes `trust_remote_code=True`; read the file "
            "first. Without that flag transformers refuses to load the model. Load it with:",
            "",
            "```python",
            "from transformers import AutoModelForSequenceClassification",
            "",
            'model = AutoModelForSequenceClassification.from_pretrained("THIS_FOLDER_OR_REPO_ID", '
            "trust_remote_code=True)",
            "```",
            "",
            "or classify with a pipeline:",
            "",
        ]
    return "\n".join(
        [
            *lines,
            "```python",
            "from transformers import pipeline",
            "",
            f'classifier = pipeline("text-classification", model="THIS_FOLDER_OR_REPO_ID"{remote})',
            f"print(classifier({example}))",
            "```",
        ]
    )
