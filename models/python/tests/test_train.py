import json

import numpy as np
import pytest

from nudge_models.dataset import holdout_split, instant_millis, read_dataset, read_definitions
from nudge_models.train import logistic_regression, main, train_churn

DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_penalty_convention_is_summed_loss_plus_half_lambda_w_squared():
    """nudge train's λ is sklearn's 1/C: at sklearn's optimum, Σ(p − y)·x + λ·w = 0 and Σ(p − y) = 0."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 3))
    y = (rng.random(3000) < 1 / (1 + np.exp(-(0.5 + X @ [1.0, -1.0, 0.2])))).astype(float)
    lam = 40.0
    lr = logistic_regression(lam).fit(X, y)
    p = lr.predict_proba(X)[:, 1]
    assert abs(np.sum(p - y)) < 1e-7
    assert np.max(np.abs(X.T @ (p - y) + lam * lr.coef_[0])) < 1e-7


def test_holdout_split_matches_nudge_train():
    times = np.array([T0 + d * DAY for d in (0, 0, 1, 1, 2, 2, 3, 3, 4, 4)])
    train, holdout = holdout_split(times)
    assert list(holdout) == [8, 9]
    train, holdout = holdout_split(times, after=T0 + 2 * DAY)
    assert list(train) == [0, 1, 2, 3, 4, 5] and list(holdout) == [6, 7, 8, 9]
    assert len(holdout_split(np.array([T0, T0]))[1]) == 0


def test_instants():
    assert instant_millis("2026-01-01") == T0
    assert instant_millis("2026-01-01T00:00:00.250Z") == T0 + 250
    assert instant_millis("2026-01-01T01:00:00+01:00") == T0


def test_reads_a_dataset_and_trains(tmp_path):
    rng = np.random.default_rng(5)
    lines = ["customer_id,cutoff,orders_90d,days_since_last_order,churn"]
    for i in range(600):
        orders = int(rng.integers(0, 5))
        days = float(rng.uniform(0, 120))
        churn = int(rng.random() < 1 / (1 + np.exp(-(days / 40 - orders))))
        cutoff = ["2026-01-31", "2026-02-07", "2026-02-14"][i % 3] + "T00:00:00.000Z"
        lines.append(f"c-{i},{cutoff},{orders},{days!r},{churn}")
    path = tmp_path / "dataset.csv"
    path.write_text("\n".join(lines) + "\n")
    data = read_dataset(str(path))
    assert data.kind == "churn" and data.features == ["orders_90d", "days_since_last_order"]
    assert data.X.shape == (600, 2)
    scaler, lr, train, holdout, figures = train_churn(data, l2=1.0)
    assert len(holdout) == 200 and figures["evaluated_on"] == "holdout"
    assert lr.coef_[0][0] < 0 < lr.coef_[0][1]
    assert 0.5 < figures["auc"] <= 1


def test_the_model_records_what_the_dataset_computed(tmp_path):
    """The definitions nudge dataset writes beside the CSV go into trained.feature_definitions, for the model's
    features only; without that file there are none; a malformed one names its field."""
    lines = ["customer_id,cutoff,orders_90d,views_24h,churn"]
    for i in range(60):
        cutoff = ["2026-01-31", "2026-02-07"][i % 2] + "T00:00:00.000Z"
        lines.append(f"c-{i},{cutoff},{i % 4},{i % 7},{int(i % 3 == 0)}")
    path = tmp_path / "dataset.csv"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "churn.json"
    assert main(["--task", "churn", "--dataset", str(path), "--out", str(out)]) == 0
    assert "feature_definitions" not in json.loads(out.read_text())["trained"]

    definitions = {"orders_90d": "count of [Order Completed] over 90d@1d, missing 0.0",
                   "views_24h": "count of [Product Viewed] over 1d@1h, missing 0.0",
                   "unused": "count of [page] over 1h@1m, missing 0.0"}
    sidecar = tmp_path / "dataset.csv.definitions.json"
    sidecar.write_text(json.dumps({"written_by": "nudge dataset", "feature_file": "models/features.json",
                                   "feature_definitions": definitions}))
    assert read_definitions(str(path)) == definitions
    assert main(["--task", "churn", "--dataset", str(path), "--out", str(out)]) == 0
    recorded = json.loads(out.read_text())["trained"]["feature_definitions"]
    assert recorded == {k: definitions[k] for k in ("orders_90d", "views_24h")}

    sidecar.write_text(json.dumps({"feature_definitions": {"views_24h": 3}}))
    with pytest.raises(ValueError, match="feature_definitions"):
        read_definitions(str(path))
