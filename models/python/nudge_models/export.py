"""Writing scikit-learn models as Nudge model files."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .model import FORMAT, parse_model


def _parts(model: Any) -> Tuple[Optional[Any], Any]:
    """(scaler or None, logistic regression) from a Pipeline, a (scaler, lr) pair, or a bare estimator."""
    if isinstance(model, tuple) and len(model) == 2:
        return model
    steps = getattr(model, "steps", None)
    if steps is not None:
        estimators = [step for _, step in steps if step is not None and step != "passthrough"]
        if len(estimators) == 1:
            return None, estimators[0]
        if len(estimators) == 2:
            return estimators[0], estimators[1]
        raise ValueError("export a Pipeline of StandardScaler then LogisticRegression (nothing else: the service "
                         "applies only standardization before the logistic model)")
    return None, model


def _standardize(scaler: Optional[Any], width: int) -> Tuple[np.ndarray, np.ndarray]:
    if scaler is None:
        return np.zeros(width), np.ones(width)
    name = type(scaler).__name__
    if name != "StandardScaler":
        raise ValueError(f"{name} cannot be expressed in the Nudge format; use StandardScaler (mean/scale)")
    mean = scaler.mean_ if getattr(scaler, "with_mean", True) and scaler.mean_ is not None else np.zeros(width)
    scale = scaler.scale_ if getattr(scaler, "with_std", True) and scaler.scale_ is not None else np.ones(width)
    return np.asarray(mean, dtype=np.float64), np.asarray(scale, dtype=np.float64)


def _coefficients(lr: Any, width: int, what: str) -> Tuple[float, np.ndarray]:
    coef = np.asarray(getattr(lr, "coef_", None))
    if coef.ndim != 2 or coef.shape != (1, width):
        raise ValueError(f"{what}: expected a fitted binary LogisticRegression with {width} coefficients, got shape {coef.shape}")
    classes = list(getattr(lr, "classes_", [0, 1]))
    if len(classes) != 2:
        raise ValueError(f"{what}: the model must be binary (classes {classes})")
    intercept = float(np.ravel(getattr(lr, "intercept_", [0.0]))[0]) if getattr(lr, "fit_intercept", True) else 0.0
    return intercept, coef[0].astype(np.float64)


def _numbers(values) -> list:
    out = [float(v) for v in values]
    for v in out:
        if not math.isfinite(v):
            raise ValueError("a coefficient or a standardization value is not finite; the service would refuse the file")
    return out


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{datetime.now(timezone.utc).microsecond // 1000:03d}Z"


# The keys a catalog action may hold (models/actions.json).
CATALOG_KEYS = ("id", "value", "channels", "eligibility")


def _write(document: Dict[str, Any], path: Optional[str], schema: Optional[Sequence[str]]) -> Dict[str, Any]:
    text = json.dumps(document, indent=2, allow_nan=False) + "\n"
    parse_model(text, file=str(path or "model.json"), schema=schema)  # refuse what the service would refuse
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return document


def export_sklearn(pipeline_or_pair: Any, features: Sequence[str], name: str, version: str,
                   path: Optional[str] = None, trained: Optional[Mapping[str, Any]] = None,
                   schema: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Writes a fitted binary model (``Pipeline(StandardScaler, LogisticRegression)``, a ``(scaler, lr)`` pair or
    a bare ``LogisticRegression`` on raw features) as a churn-style (``binary``) Nudge model file.

    The Nudge format scores ``sigmoid(intercept + Σ w·(x − mean)/scale)``: StandardScaler's ``mean_``/``scale_``
    become ``standardize`` and the regression's ``intercept_``/``coef_`` (on standardized features) the weights,
    so the service reproduces ``predict_proba(X)[:, 1]``. Returns the document; writes it when ``path`` is given.
    """
    scaler, lr = _parts(pipeline_or_pair)
    width = len(features)
    mean, scale = _standardize(scaler, width)
    intercept, weights = _coefficients(lr, width, name)
    document: Dict[str, Any] = {
        "format": FORMAT, "name": name, "version": version, "task": "binary",
        "features": list(features),
        "standardize": {"mean": _numbers(mean), "scale": _numbers(scale)},
        "intercept": _numbers([intercept])[0],
        "weights": _numbers(weights),
        "trained": {"at": _now(), "trainer": "scikit-learn", **dict(trained or {})},
    }
    return _write(document, path, schema)


def export_sklearn_actions(scaler: Optional[Any], models: Mapping[str, Any], catalog: Any, features: Sequence[str],
                           name: str, version: str, path: Optional[str] = None,
                           trained: Optional[Mapping[str, Any]] = None,
                           schema: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Writes an NBA (``actions``) model file: one shared ``StandardScaler`` (the format has one ``standardize``
    for all actions) and one fitted ``LogisticRegression`` per action id. ``catalog`` is the path of
    ``models/actions.json`` or its parsed content; actions are written in catalog order with their value,
    channels and eligibility, and every catalog action needs a model."""
    if isinstance(catalog, (str, bytes)) or hasattr(catalog, "__fspath__"):
        with open(catalog, encoding="utf-8") as f:
            catalog = json.load(f)
    width = len(features)
    mean, scale = _standardize(scaler, width)
    for key in catalog:
        if key not in ("actions", "notes"):
            raise ValueError(f"catalog {key} is not a key here; a catalog is {{\"actions\": [...]}} (and \"notes\")")
    actions = []
    for i, entry in enumerate(catalog["actions"]):
        # A misspelt key ignored would drop what it meant: an "eligibilty" list, and the action's rules with it.
        for key in entry:
            if key not in CATALOG_KEYS:
                raise ValueError(f"catalog actions[{i}].{key} is not a key here; use {', '.join(CATALOG_KEYS)}")
        action_id = entry["id"]
        if action_id not in models:
            raise ValueError(f"no fitted model for catalog action {action_id!r}")
        model = models[action_id]
        if isinstance(model, tuple) and len(model) == 2 and not hasattr(model[1], "coef_"):
            intercept, weights = float(model[0]), np.asarray(model[1], dtype=np.float64)
        else:
            intercept, weights = _coefficients(model, width, action_id)
        actions.append({
            "id": action_id, "intercept": _numbers([intercept])[0], "weights": _numbers(weights),
            "value": float(entry["value"]), "channels": list(entry["channels"]),
            "eligibility": list(entry.get("eligibility", [])),
        })
    document: Dict[str, Any] = {
        "format": FORMAT, "name": name, "version": version, "task": "actions",
        "features": list(features),
        "standardize": {"mean": _numbers(mean), "scale": _numbers(scale)},
        "actions": actions,
        "trained": {"at": _now(), "trainer": "scikit-learn", **dict(trained or {})},
    }
    return _write(document, path, schema)
