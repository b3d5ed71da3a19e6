"""GLUE task metrics as an ``evaluate`` module that loads from this folder, with no Hub.

``evaluate.load(<this folder>, config_name=...)`` where config_name is a metric set:
accuracy, accuracy_f1, matthews or pearson_spearman (keys match the Hub's ``glue`` metric), or
accuracy_f1_macro (custom data with any number of classes: F1 averaged over classes, ``f1_macro``).
"""

import datasets
import evaluate
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

# The metric sets and their keys live in tasks.py. Absolute import: evaluate.load runs a copy of this file
# outside the package, where a relative import has no parent; the package itself is always importable there.
from mrpc_finetune.recipe.tasks import METRIC_SETS

_DESCRIPTION = "Accuracy, F1, Matthews correlation or Pearson/Spearman correlation for GLUE-style tasks."
_INPUTS = "predictions: predicted label ids (or scores for pearson_spearman); references: gold label ids (or scores)."


class GlueMetric(evaluate.Metric):
    def _info(self):
        if self.config_name not in METRIC_SETS:
            raise KeyError(f"config_name must be one of {tuple(METRIC_SETS)}, got {self.config_name!r}")
        value_type = "float32" if self.config_name == "pearson_spearman" else "int64"
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_INPUTS,
            features=datasets.Features(
                {"predictions": datasets.Value(value_type), "references": datasets.Value(value_type)}
            ),
        )

    def _compute(self, predictions, references):
        if self.config_name == "pearson_spearman":
            return {
                "pearson": float(pearsonr(references, predictions)[0]),
                "spearmanr": float(spearmanr(references, predictions)[0]),
            }
        if self.config_name == "matthews":
            return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
        result = {"accuracy": float(accuracy_score(references, predictions))}
        if self.config_name == "accuracy_f1":
            result["f1"] = float(f1_score(references, predictions))
        if self.config_name == "accuracy_f1_macro":
            result["f1_macro"] = float(f1_score(references, predictions, average="macro"))
        return result
