"""The GLUE metric as an ``evaluate`` module, which ``evaluate.load`` runs from this folder (metrics.py).
It imports ``recipe.tasks`` alone, for the metric sets."""
