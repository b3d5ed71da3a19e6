"""mrpc_finetune: readable, rerunnable fine-tuning of transformer encoders on GLUE-style classification.

The layers and where to change what: docs/architecture.md; what changed between versions: CHANGELOG.md.
"""

__version__ = "0.2.0"
