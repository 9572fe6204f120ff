"""Compares the Swift trainer with scikit-learn on the same dataset (run by ``check_parity.sh``).

Checks, for one model task:
1. coefficients (intercept and weights on standardized features) of ``nudge train`` and of scikit-learn
   (``python -m nudge_models.train``) agree within ``--coef-tolerance`` (1e-3);
2. their held-out AUCs agree within ``--auc-tolerance`` (1e-4);
3. :func:`nudge_models.score` of the Swift model equals the Swift service scorer's probabilities
   (``nudge evaluate --scores-out``) within 1e-12;
4. the model exported from Python, scored by the Swift service scorer, equals :func:`nudge_models.score`
   (and so scikit-learn's ``predict_proba``) within 1e-12.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys

import numpy as np

from .dataset import instant_millis, read_dataset
from .model import load_model, score


def _swift_scores(path: str) -> np.ndarray:
    with open(path, newline="", encoding="utf-8") as f:
        return np.array([float(r["probability"]) for r in csv.DictReader(f)])


def _coefficients(model) -> dict:
    if model.task == "binary":
        return {"": np.concatenate([[model.intercept], model.weights])}
    return {a.id: np.concatenate([[a.intercept], a.weights]) for a in model.actions}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="dataset.csv or offers.csv")
    parser.add_argument("--after", required=True, help="the holdout boundary both trainers used")
    parser.add_argument("--swift-model", required=True)
    parser.add_argument("--python-model", required=True)
    parser.add_argument("--swift-scores", required=True, help="nudge evaluate --model SWIFT --scores-out")
    parser.add_argument("--python-model-swift-scores", required=True, help="nudge evaluate --model PYTHON --scores-out")
    parser.add_argument("--coef-tolerance", type=float, default=1e-3)
    parser.add_argument("--auc-tolerance", type=float, default=1e-4)
    parser.add_argument("--score-tolerance", type=float, default=1e-12)
    args = parser.parse_args(argv)

    swift = load_model(args.swift_model)
    python = load_model(args.python_model)
    data = read_dataset(args.dataset)
    after = instant_millis(args.after)
    holdout = data.times > after
    if data.kind == "offers":
        holdout &= np.isin(data.groups, [a.id for a in swift.actions])
    rows = data.rows(holdout)
    failures = []

    coef_diff = 0.0
    for key, coefficients in _coefficients(swift).items():
        other = _coefficients(python)[key]
        diff = float(np.max(np.abs(coefficients - other)))
        coef_diff = max(coef_diff, diff)
        print(f"coefficients{' ' + key if key else ''}: max |swift − sklearn| = {diff:.3e}")
    if not coef_diff <= args.coef_tolerance:
        failures.append(f"coefficients differ by {coef_diff:.3e} > {args.coef_tolerance}")
    std_diff = max(float(np.max(np.abs(swift.mean - python.mean) / python.scale)),
                   float(np.max(np.abs(swift.scale - python.scale) / python.scale)))
    print(f"standardize: max relative |swift − StandardScaler| = {std_diff:.3e}")
    if not std_diff <= 1e-9:
        failures.append(f"standardization differs by {std_diff:.3e}")

    # Both record what each feature computed, from the dataset's definitions file: the service checks them.
    swift_definitions = swift.trained.get("feature_definitions")
    python_definitions = python.trained.get("feature_definitions")
    print(f"feature definitions recorded: swift {len(swift_definitions or {})}, sklearn {len(python_definitions or {})}")
    if not swift_definitions or swift_definitions != python_definitions:
        failures.append("trained.feature_definitions differ between the two models (or are missing)")

    swift_auc, python_auc = swift.trained.get("auc"), python.trained.get("auc")
    auc_diff = abs(swift_auc - python_auc)
    print(f"holdout AUC: swift {swift_auc:.6f}, sklearn {python_auc:.6f}, |diff| = {auc_diff:.2e}")
    if not auc_diff <= args.auc_tolerance:
        failures.append(f"AUC differs by {auc_diff:.2e} > {args.auc_tolerance}")

    def compare_scores(scores_path, model, label, count_failure, diff_failure):
        """The service's scores (a CSV from nudge evaluate) against nudge_models.score on the same rows."""
        service = _swift_scores(scores_path)
        mine = score(model, rows.frame())
        if len(service) != len(mine):
            failures.append(count_failure.format(service=len(service), mine=len(mine)))
            return
        diff = float(np.max(np.abs(service - mine))) if len(mine) else 0.0
        print(f"{label}, {len(mine)} rows: max |diff| = {diff:.3e}")
        if not diff <= args.score_tolerance:
            failures.append(diff_failure.format(diff=diff))

    compare_scores(args.swift_scores, swift, "swift model: nudge_models.score vs the service scorer",
                   "swift scored {service} rows, python selected {mine}", "score() differs from the service by {diff:.3e}")
    compare_scores(args.python_model_swift_scores, python,
                   "sklearn model exported to Nudge: service scorer vs nudge_models.score",
                   "swift scored {service} rows of the python model, python selected {mine}",
                   "the service scores the exported model differently by {diff:.3e}")

    for failure in failures:
        print("PARITY FAILURE:", failure, file=sys.stderr)
    print(json.dumps({"task": swift.task, "coef_max_diff": coef_diff, "auc_diff": auc_diff, "ok": not failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
