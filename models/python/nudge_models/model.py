"""Nudge model files: loading with the service's checks, and scoring exactly as the service does."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

FORMAT = "nba-logistic/1"

#: The service's built-in feature set (``FeatureSet.standard``), in vector order: the default schema when no
#: feature file is given. Models trained on ``models/features.json`` validate with ``feature_schema(path)``.
STANDARD_FEATURES = [
    "views_1h", "views_24h", "adds_24h", "orders_30d", "orders_90d", "revenue_90d",
    "days_since_last_order", "tickets_open", "complaints_30d", "refunds_90d", "nps_last",
    "cart_items", "sessions_7d", "days_since_last_seen",
]

def feature_schema(path: str) -> List[str]:
    """The feature names a feature file (``models/features.json``) defines, in the service's vector order."""
    with open(path, encoding="utf-8") as f:
        document = json.load(f)
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list) or not all(isinstance(x, dict) and isinstance(x.get("name"), str) for x in features):
        raise ValueError(f"{path}: features: expected a list of objects with a name")
    return [x["name"] for x in features]


#: Channel names an action may list (the contract's touchpoints, without ``other``).
CHANNELS = ["web", "app", "store", "call_center", "email", "sms", "push", "social", "partner"]

OPERATORS = ["<", "<=", ">", ">=", "==", "!="]
# The keys an action may hold; "fitted" and "trained" carry a trainer's metadata.
ACTION_KEYS = ("id", "intercept", "weights", "value", "channels", "eligibility", "fitted", "trained")


class ModelFileError(ValueError):
    """A model file the service would refuse: ``field`` is a JSON path such as ``actions[2].weights[4]``."""

    def __init__(self, file: str, field: str, problem: str):
        self.file, self.field, self.problem = file, field, problem
        super().__init__(f"{file}: {field}: {problem}" if field else f"{file}: {problem}")


@dataclass
class Action:
    """One action of an NBA model: its propensity model and its business side."""

    id: str
    intercept: float
    weights: np.ndarray
    value: float
    channels: List[str]
    eligibility: List[Any]
    extra: Dict[str, Any] = field(default_factory=dict)


@dataclass
class NudgeModel:
    """A validated model file. ``task`` is ``binary`` (churn) or ``actions`` (NBA)."""

    name: str
    version: str
    task: str
    features: List[str]
    mean: np.ndarray
    scale: np.ndarray
    intercept: float = 0.0
    weights: Optional[np.ndarray] = None
    actions: List[Action] = field(default_factory=list)
    trained: Optional[Dict[str, Any]] = None

    @property
    def identity(self) -> str:
        """``name@version``, as recommendations and metrics report it."""
        return f"{self.name}@{self.version}"

    def action(self, action_id: str) -> Action:
        """The action called ``action_id``."""
        for a in self.actions:
            if a.id == action_id:
                return a
        raise KeyError(f"{self.identity} has no action {action_id!r}; it has {[a.id for a in self.actions]}")


def load_model(path: str, schema: Optional[Sequence[str]] = None) -> NudgeModel:
    """Reads and validates a model file as the service does (pass ``schema``, e.g. ``feature_schema("models/features.json")``, to also check its features)."""
    with open(path, "rb") as f:
        return parse_model(f.read(), file=str(path), schema=schema)


def parse_model(data: bytes | str, file: str = "model.json",
                schema: Optional[Sequence[str]] = None) -> NudgeModel:
    """Validates model JSON text; raises :class:`ModelFileError` naming the field, like the service."""
    try:
        root = json.loads(data)
    except ValueError as e:
        raise ModelFileError(file, "", f"is not valid JSON: {e}") from None
    if not isinstance(root, dict):
        raise ModelFileError(file, "", "must be a JSON object")

    def known(obj: Mapping[str, Any], keys: Sequence[str], path: str, metadata: str) -> None:
        # As the service: a misspelt key ignored would drop what it meant (an "eligibilty" list, its rules).
        for key in obj:
            if key not in keys:
                raise ModelFileError(file, path + key, f"is not a key here; use {', '.join(sorted(keys))} ({metadata})")

    def required(obj: Mapping[str, Any], key: str, path: str) -> Any:
        if key not in obj:
            raise ModelFileError(file, path + key, "is missing")
        return obj[key]

    def string(obj: Mapping[str, Any], key: str, path: str = "") -> str:
        value = required(obj, key, path)
        if not isinstance(value, str):
            raise ModelFileError(file, path + key, "must be a string")
        return value

    def number(value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ModelFileError(file, where, "must be a number")
        if not math.isfinite(value):
            raise ModelFileError(file, where, f"is {value}; numbers must be finite")
        return float(value)

    def vector(value: Any, where: str, count: int) -> np.ndarray:
        if not isinstance(value, list):
            raise ModelFileError(file, where, "must be an array of numbers")
        if len(value) != count:
            raise ModelFileError(file, where, f"has {len(value)} values but features has {count}")
        return np.array([number(v, f"{where}[{i}]") for i, v in enumerate(value)], dtype=np.float64)

    fmt = string(root, "format")
    if fmt != FORMAT:
        raise ModelFileError(file, "format", f"is {fmt!r}; expected {FORMAT!r}")
    name = string(root, "name")
    if not name or "@" in name:
        raise ModelFileError(file, "name", f"is {name!r}; give a non-empty name without '@'")
    version = string(root, "version")
    if not version:
        raise ModelFileError(file, "version", "is empty")
    task = string(root, "task")
    if task not in ("binary", "actions"):
        raise ModelFileError(file, "task", f"is {task!r}; expected 'binary' or 'actions'")
    metadata = 'a trainer\'s own metadata goes under "trained"'
    top = ["format", "name", "version", "task", "features", "standardize", "trained"]
    # Unknown keys before missing ones, as the service: a misspelt "standardise" is named, not "standardize".
    known(root, top + (["intercept", "weights"] if task == "binary" else ["actions"]), "", metadata)
    features = required(root, "features", "")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise ModelFileError(file, "features", "must be a non-empty array of feature names")
    for i, f in enumerate(features):
        if features.index(f) != i:
            raise ModelFileError(file, f"features[{i}]", f"{f!r} is listed twice")
        if schema is not None and f not in schema:
            raise ModelFileError(file, f"features[{i}]", f"feature {f!r} is not defined in the feature schema")
    standardize = required(root, "standardize", "")
    if not isinstance(standardize, dict):
        raise ModelFileError(file, "standardize", "must be an object {mean, scale}")
    known(standardize, ["mean", "scale"], "standardize.", metadata)
    mean = vector(required(standardize, "mean", "standardize."), "standardize.mean", len(features))
    scale = vector(required(standardize, "scale", "standardize."), "standardize.scale", len(features))
    for i, s in enumerate(scale):
        if s <= 0:
            raise ModelFileError(file, f"standardize.scale[{i}]", f"is {s}; a scale must be positive")
    trained = root.get("trained")
    def check_rule(rule: Any, where: str) -> None:
        if isinstance(rule, dict) and "any" in rule:
            known(rule, ["any"], where + ".", 'a rule is {"any":[...]} or one condition {feature, op, value}, not both')
            conditions = rule["any"]
            if not isinstance(conditions, list) or not conditions:
                raise ModelFileError(file, where + ".any", "must be a non-empty list of conditions")
        else:
            conditions = [rule]
        for c in conditions:
            if not isinstance(c, dict) or c.get("op") not in OPERATORS:
                raise ModelFileError(file, where, "needs feature, op (< <= > >= == !=), value")
            known(c, ["feature", "op", "value"], where + ".", "a condition is {feature, op, value}")

    model = NudgeModel(name=name, version=version, task=task, features=list(features), mean=mean, scale=scale,
                       trained=trained if isinstance(trained, dict) else None)
    if task == "binary":
        model.intercept = number(required(root, "intercept", ""), "intercept")
        model.weights = vector(required(root, "weights", ""), "weights", len(features))
        return model

    actions = required(root, "actions", "")
    if not isinstance(actions, list) or not actions:
        raise ModelFileError(file, "actions", "must be a non-empty array")
    seen = set()
    for i, a in enumerate(actions):
        path = f"actions[{i}]."
        if not isinstance(a, dict):
            raise ModelFileError(file, f"actions[{i}]", "must be an object")
        known(a, ACTION_KEYS, path, 'an action\'s metadata goes under "trained" or "fitted"')
        action_id = string(a, "id", path)
        if not action_id or action_id == "none":
            raise ModelFileError(file, path + "id", f"{action_id!r} is not allowed")
        if action_id in seen:
            raise ModelFileError(file, path + "id", f"{action_id!r} is listed twice")
        seen.add(action_id)
        value = number(required(a, "value", path), path + "value")
        if value < 0:
            raise ModelFileError(file, path + "value", f"is {value}; must be >= 0")
        channels = required(a, "channels", path)
        if not isinstance(channels, list) or not channels:
            raise ModelFileError(file, path + "channels", "must be a non-empty array")
        for c in channels:
            if c not in CHANNELS:
                raise ModelFileError(file, path + "channels", f"{c!r} is not a channel; use one of {CHANNELS}")
        eligibility = a.get("eligibility", [])
        if not isinstance(eligibility, list):
            raise ModelFileError(file, path + "eligibility", "must be a list of rules that must all hold, or [] for none")
        for r, rule in enumerate(eligibility):
            check_rule(rule, f"{path}eligibility[{r}]")
        model.actions.append(Action(
            id=action_id,
            intercept=number(required(a, "intercept", path), path + "intercept"),
            weights=vector(required(a, "weights", path), path + "weights", len(features)),
            value=value, channels=list(channels), eligibility=list(eligibility),
            extra={k: v for k, v in a.items() if k in ("fitted", "trained")}))
    return model


def _columns(model: NudgeModel, data: Any) -> List[np.ndarray]:
    """The model's feature columns from a DataFrame, a mapping of columns, a structured array, or a 2-D array
    whose columns are in the model's feature order."""
    if isinstance(data, np.ndarray) and data.dtype.names is None:
        matrix = np.asarray(data, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != len(model.features):
            raise ValueError(f"a plain array must be 2-D with {len(model.features)} columns in the order {model.features}")
        return [matrix[:, j] for j in range(matrix.shape[1])]
    columns = []
    for name in model.features:
        try:
            column = data[name]
        except (KeyError, IndexError, ValueError):
            raise KeyError(f"the data has no column {name!r}, which {model.identity} uses") from None
        if hasattr(column, "to_numpy"):
            column = column.to_numpy()
        columns.append(np.asarray(column, dtype=np.float64))
    return columns


def _logit(columns: List[np.ndarray], mean: np.ndarray, scale: np.ndarray,
           intercept: float, weights: np.ndarray) -> np.ndarray:
    # Same order as the service's LogisticScorer: z = intercept, then z += w_i * (x_i - mean_i) / scale_i
    # feature by feature; a value that is not finite contributes nothing.
    z = np.full(len(columns[0]) if columns else 0, float(intercept), dtype=np.float64)
    for x, m, s, w in zip(columns, mean, scale, weights):
        term = float(w) * (x - float(m)) / float(s)
        z = z + np.where(np.isfinite(x), term, 0.0)
    return z


def _sigmoid(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    e = np.exp(z[~positive])
    out[~positive] = e / (1.0 + e)
    out[np.isnan(z)] = 0.0
    return out


def score(model: NudgeModel, data: Any, action: Optional[str] = None):
    """Probabilities exactly as the service computes them (standardize, then logistic).

    ``data``: a pandas DataFrame, a mapping of column name to values, a structured array, or a 2-D array
    with columns in ``model.features`` order.

    - churn (``binary``) model: one probability per row.
    - NBA (``actions``) model: with ``action``, that action's propensity per row; without, and when the
      data has an ``action`` column, each row scored by its own action's model (rows whose action the model
      does not know get NaN); otherwise a dict ``{action_id: probabilities}``.
    """
    columns = _columns(model, data)
    if model.task == "binary":
        return _sigmoid(_logit(columns, model.mean, model.scale, model.intercept, model.weights))
    if action is not None:
        a = model.action(action)
        return _sigmoid(_logit(columns, model.mean, model.scale, a.intercept, a.weights))
    per_action = {a.id: _sigmoid(_logit(columns, model.mean, model.scale, a.intercept, a.weights)) for a in model.actions}
    try:
        row_actions = data["action"]
    except (KeyError, IndexError, ValueError, TypeError):
        return per_action
    row_actions = np.asarray(row_actions.to_numpy() if hasattr(row_actions, "to_numpy") else row_actions)
    out = np.full(len(row_actions), np.nan)
    for action_id, p in per_action.items():
        mask = row_actions == action_id
        out[mask] = p[mask]
    return out
