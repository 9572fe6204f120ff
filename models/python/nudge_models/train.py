"""Train Nudge models with scikit-learn, mirroring ``nudge train`` (same split, same objective).

``nudge train --l2 λ`` minimizes the summed log-loss + λ/2·‖w‖² with the intercept unpenalized, on features
standardized with the training rows' mean and population standard deviation. scikit-learn's
``LogisticRegression(C)`` minimizes C·Σ log-loss + ½‖w‖² (intercept unpenalized for the lbfgs/newton solvers),
which has the same minimizer when C = 1/λ; ``StandardScaler`` is the same standardization. So both trainers
solve the same problem and agree to the solvers' tolerance.

    python -m nudge_models.train --task churn --dataset dataset.csv --out churn.json [--l2 1] [--holdout-after DATE]
    python -m nudge_models.train --task nba --offers offers.csv --actions models/actions.json --out nba.json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from datetime import datetime, timezone
from typing import Any, Dict, Optional

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.preprocessing import StandardScaler

from .dataset import Dataset, holdout_split, instant_millis, read_dataset, read_definitions
from .export import export_sklearn, export_sklearn_actions
from .model import feature_schema


def logistic_regression(l2: float) -> LogisticRegression:
    """The estimator matching ``nudge train --l2 l2``: C = 1/λ, tight Newton solve."""
    return LogisticRegression(C=(1.0 / l2) if l2 > 0 else np.inf, solver="newton-cholesky", tol=1e-10, max_iter=1000)


def _figures(y: np.ndarray, p: np.ndarray) -> Dict[str, Any]:
    out: Dict[str, Any] = {"rows": int(len(y)), "base_rate": float(np.mean(y)) if len(y) else 0.0}
    if len(y) and 0 < y.sum() < len(y):
        out["auc"] = float(roc_auc_score(y, p))
        out["logloss"] = float(log_loss(y, np.clip(p, 1e-15, 1 - 1e-15), labels=[0, 1]))
    return out


def train_churn(data: Dataset, l2: float = 1.0, after: Optional[int] = None, share: float = 0.2):
    """(scaler, lr, train indices, holdout indices, figures)."""
    train, holdout = holdout_split(data.times, after, share)
    scaler = StandardScaler().fit(data.X[train])
    lr = logistic_regression(l2).fit(scaler.transform(data.X[train]), data.y[train])
    evaluated = holdout if len(holdout) else train
    p = lr.predict_proba(scaler.transform(data.X[evaluated]))[:, 1]
    figures = _figures(data.y[evaluated], p)
    figures["evaluated_on"] = "holdout" if len(holdout) else "train"
    figures["train_rows"] = int(len(train))
    return scaler, lr, train, holdout, figures


def train_nba(data: Dataset, catalog: Dict[str, Any], l2: float = 1.0, after: Optional[int] = None, share: float = 0.2):
    """(scaler, {action: lr or (intercept, weights)}, train, holdout, figures) on offer rows of catalog actions."""
    ids = [a["id"] for a in catalog["actions"]]
    data = data.rows(np.isin(data.groups, ids))
    train, holdout = holdout_split(data.times, after, share)
    scaler = StandardScaler().fit(data.X[train])
    overall = float(np.mean(data.y[train]))
    models: Dict[str, Any] = {}
    scores = np.zeros(len(data))
    per_action: Dict[str, Any] = {}
    for action in ids:
        rows = train[data.groups[train] == action]
        y = data.y[rows]
        if len(y) and 0 < y.sum() < len(y):
            model = logistic_regression(l2).fit(scaler.transform(data.X[rows]), y)
            intercept, weights = float(model.intercept_[0]), model.coef_[0]
            models[action] = model
        else:
            # As nudge train: the smoothed base rate, no weights.
            rate = overall if len(y) == 0 else (y.sum() + 0.5) / (len(y) + 1)
            rate = min(max(rate, 1e-4), 1 - 1e-4)
            intercept, weights = math.log(rate / (1 - rate)), np.zeros(len(data.features))
            models[action] = (intercept, weights)
        mine = np.flatnonzero(data.groups == action)
        z = intercept + scaler.transform(data.X[mine]) @ weights
        scores[mine] = 1 / (1 + np.exp(-z))
        held = holdout[data.groups[holdout] == action]
        per_action[action] = _figures(data.y[held], scores[held]) if len(held) else {"rows": 0}
    evaluated = holdout if len(holdout) else train
    figures = _figures(data.y[evaluated], scores[evaluated])
    figures["evaluated_on"] = "holdout" if len(holdout) else "train"
    figures["train_rows"] = int(len(train))
    figures["actions"] = per_action
    return scaler, models, train, holdout, figures


def _definitions(dataset: str, features) -> Dict[str, Any]:
    """``{"feature_definitions": ...}`` for the model's features, from the dataset's definitions file (what
    ``nudge dataset`` computed each column as), or nothing when there is none."""
    definitions = read_definitions(dataset)
    if not definitions:
        return {}
    return {"feature_definitions": {n: definitions[n] for n in features if n in definitions}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", choices=["churn", "nba"], required=True)
    parser.add_argument("--dataset", help="dataset.csv (churn)")
    parser.add_argument("--offers", help="offers.csv (nba)")
    parser.add_argument("--actions", default="models/actions.json", help="action catalog (nba)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--l2", type=float, default=1.0, help="λ on the summed log-loss; sklearn C = 1/λ")
    parser.add_argument("--holdout-after", help="hold out rows later than this date or time")
    parser.add_argument("--feature-file", help="the service's feature definitions (models/features.json); the exported "
                        "model is validated against them. Default: the dataset's own columns, which nudge dataset "
                        "computed from that file")
    parser.add_argument("--name")
    parser.add_argument("--version", default=datetime.now(timezone.utc).strftime("%Y-%m-%d") + ".1")
    args = parser.parse_args(argv)
    after = instant_millis(args.holdout_after) if args.holdout_after else None
    schema = feature_schema(args.feature_file) if args.feature_file else None
    if args.task == "churn":
        if not args.dataset:
            parser.error("--task churn needs --dataset")
        data = read_dataset(args.dataset, kind="churn")
        scaler, lr, _, _, figures = train_churn(data, args.l2, after)
        export_sklearn((scaler, lr), data.features, args.name or "churn", args.version, args.out,
                       trained={"rows": figures["train_rows"], **{k: figures[k] for k in ("auc", "logloss") if k in figures},
                                "evaluated_on": figures["evaluated_on"], "l2": args.l2,
                                **_definitions(args.dataset, data.features)},
                       schema=schema or data.features)
    else:
        path = args.offers or args.dataset
        if not path:
            parser.error("--task nba needs --offers")
        with open(args.actions, encoding="utf-8") as f:
            catalog = json.load(f)
        data = read_dataset(path, kind="offers")
        scaler, models, _, _, figures = train_nba(data, catalog, args.l2, after)
        export_sklearn_actions(scaler, models, catalog, data.features, args.name or "nba", args.version, args.out,
                               trained={"rows": figures["train_rows"],
                                        **{k: figures[k] for k in ("auc", "logloss") if k in figures},
                                        "evaluated_on": figures["evaluated_on"], "l2": args.l2,
                                        **_definitions(path, data.features)},
                               schema=schema or data.features)
    json.dump(figures, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
