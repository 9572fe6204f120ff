import json
import os

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from nudge_models import export_sklearn, export_sklearn_actions, load_model, score
from nudge_models.model import STANDARD_FEATURES

CATALOG = os.path.join(os.path.dirname(__file__), "..", "..", "actions.json")


def synthetic(n=2000, seed=1):
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(size=(n, len(STANDARD_FEATURES)))) * np.arange(1, len(STANDARD_FEATURES) + 1)
    z = -1 + 0.3 * X[:, 6] / 7 - 0.4 * X[:, 4] / 5
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
    return X, y


def test_exported_pipeline_scores_as_predict_proba(tmp_path):
    X, y = synthetic()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X, y)
    path = tmp_path / "churn.json"
    export_sklearn(pipe, STANDARD_FEATURES, "churn", "2026-11-23.9", str(path), trained={"auc": 0.7})
    model = load_model(str(path))
    assert model.identity == "churn@2026-11-23.9"
    assert model.trained["trainer"] == "scikit-learn" and model.trained["auc"] == 0.7
    columns = {name: X[:, j] for j, name in enumerate(STANDARD_FEATURES)}
    assert np.max(np.abs(score(model, columns) - pipe.predict_proba(X)[:, 1])) < 1e-12


def test_pair_and_bare_estimators(tmp_path):
    X, y = synthetic(seed=2)
    scaler = StandardScaler().fit(X)
    lr = LogisticRegression().fit(scaler.transform(X), y)
    pair = export_sklearn((scaler, lr), STANDARD_FEATURES, "churn", "1")
    assert pair["standardize"]["mean"] == list(scaler.mean_)
    bare = LogisticRegression(max_iter=1000).fit(X, y)
    document = export_sklearn(bare, STANDARD_FEATURES, "churn", "1", str(tmp_path / "bare.json"))
    assert document["standardize"]["scale"] == [1.0] * len(STANDARD_FEATURES)
    model = load_model(str(tmp_path / "bare.json"))
    assert np.max(np.abs(score(model, X) - bare.predict_proba(X)[:, 1])) < 1e-12


def test_refuses_what_the_format_cannot_express():
    X, y = synthetic(seed=3)
    with pytest.raises(ValueError, match="StandardScaler"):
        export_sklearn(make_pipeline(MinMaxScaler(), LogisticRegression()).fit(X, y), STANDARD_FEATURES, "churn", "1")
    with pytest.raises(ValueError, match="coefficients"):
        export_sklearn(make_pipeline(StandardScaler(), LogisticRegression()).fit(X[:, :3], y), STANDARD_FEATURES, "churn", "1")


def test_a_catalog_with_a_misspelt_key_is_refused():
    X, y = synthetic(seed=5)
    scaler = StandardScaler().fit(X)
    with open(CATALOG, encoding="utf-8") as f:
        catalog = json.load(f)
    catalog["actions"][1]["eligibilty"] = catalog["actions"][1].pop("eligibility")
    models = {a["id"]: (-3.0, np.zeros(len(STANDARD_FEATURES))) for a in catalog["actions"]}
    with pytest.raises(ValueError, match=r"actions\[1\]\.eligibilty is not a key here"):
        export_sklearn_actions(scaler, models, catalog, STANDARD_FEATURES, "nba", "1")


def test_actions_export_keeps_the_catalog(tmp_path):
    X, y = synthetic(seed=4)
    scaler = StandardScaler().fit(X)
    ids = ["retention_offer", "service_recovery_call", "cart_reminder", "cross_sell_accessory", "promo_discount"]
    models = {a: LogisticRegression().fit(scaler.transform(X[i::5]), y[i::5]) for i, a in enumerate(ids)}
    models["promo_discount"] = (-3.0, np.zeros(len(STANDARD_FEATURES)))  # a base-rate model
    path = tmp_path / "nba.json"
    export_sklearn_actions(scaler, models, CATALOG, STANDARD_FEATURES, "nba", "2026-11-23.9", str(path))
    model = load_model(str(path))
    assert [a.id for a in model.actions] == ids
    assert [a.value for a in model.actions] == [15, 20, 5, 8, 6]
    assert model.actions[1].eligibility == [{"any": [{"feature": "tickets_open", "op": ">=", "value": 1},
                                                     {"feature": "complaints_30d", "op": ">=", "value": 1}]}]
    columns = {name: X[:, j] for j, name in enumerate(STANDARD_FEATURES)}
    expected = models["cart_reminder"].predict_proba(scaler.transform(X))[:, 1]
    assert np.max(np.abs(score(model, columns, action="cart_reminder") - expected)) < 1e-12
    assert np.allclose(score(model, columns, action="promo_discount"), 1 / (1 + np.exp(3.0)))
