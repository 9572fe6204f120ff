"""Load, score, train and export Nudge model files (format ``nba-logistic/1``).

The service scores ``p = sigmoid(intercept + sum_i w_i * (x_i - mean_i) / scale_i)``; :func:`score`
computes exactly that, in the same order of operations, so a data scientist sees the service's numbers.
"""

from .model import ModelFileError, NudgeModel, feature_schema, load_model, parse_model, score
from .export import export_sklearn, export_sklearn_actions
from .dataset import Dataset, read_dataset, read_definitions

__all__ = [
    "ModelFileError",
    "NudgeModel",
    "feature_schema",
    "load_model",
    "parse_model",
    "score",
    "export_sklearn",
    "export_sklearn_actions",
    "Dataset",
    "read_dataset",
    "read_definitions",
]
