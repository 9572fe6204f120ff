import json
import math

import numpy as np
import pytest

from nudge_models import ModelFileError, parse_model, score
from nudge_models.model import STANDARD_FEATURES

CHURN = {
    "format": "nba-logistic/1", "name": "churn", "version": "2026-11-20.1", "task": "binary",
    "features": ["orders_90d", "days_since_last_order"],
    "standardize": {"mean": [1.2, 14.0], "scale": [1.1, 12.5]},
    "intercept": -1.31, "weights": [-0.8, 1.12],
    "trained": {"at": "2026-11-20T04:00:00Z", "rows": 182311, "auc": 0.83, "logloss": 0.41},
}

NBA = {
    "format": "nba-logistic/1", "name": "nba", "version": "1", "task": "actions",
    "features": ["cart_items", "tickets_open"],
    "standardize": {"mean": [1.0, 0.0], "scale": [2.0, 1.0]},
    "actions": [
        {"id": "cart_reminder", "intercept": 0.0, "weights": [1.0, 0.0], "value": 5, "channels": ["push"],
         "eligibility": [{"feature": "cart_items", "op": ">=", "value": 1}]},
        {"id": "service_recovery_call", "intercept": -1.0, "weights": [0.0, 2.0], "value": 20, "channels": ["call_center"],
         "eligibility": [{"any": [{"feature": "tickets_open", "op": ">=", "value": 1}]}]},
    ],
}


def text(document, **changes):
    d = json.loads(json.dumps(document))
    d.update(changes)
    return json.dumps(d)


def test_churn_scores_the_contract_formula():
    model = parse_model(text(CHURN))
    assert model.identity == "churn@2026-11-20.1"
    p = score(model, {"orders_90d": [1.2, 3.4], "days_since_last_order": [14.0, 2.0]})
    # At the means the logit is the intercept.
    assert p[0] == pytest.approx(1 / (1 + math.exp(1.31)), abs=1e-15)
    z = -1.31 + -0.8 * (3.4 - 1.2) / 1.1 + 1.12 * (2.0 - 14.0) / 12.5
    assert p[1] == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-15)


def test_a_value_that_is_not_finite_contributes_nothing():
    model = parse_model(text(CHURN))
    p = score(model, {"orders_90d": [float("nan"), float("inf")], "days_since_last_order": [14.0, 14.0]})
    assert p[0] == p[1] == pytest.approx(1 / (1 + math.exp(1.31)), abs=1e-15)


def test_plain_array_in_feature_order_and_missing_columns():
    model = parse_model(text(CHURN))
    p = score(model, np.array([[1.2, 14.0]]))
    assert p[0] == pytest.approx(1 / (1 + math.exp(1.31)), abs=1e-15)
    with pytest.raises(KeyError, match="days_since_last_order"):
        score(model, {"orders_90d": [1.0]})


def test_nba_scores_each_row_by_its_action():
    model = parse_model(text(NBA))
    data = {"cart_items": np.array([3.0, 3.0, 0.0]), "tickets_open": np.array([0.0, 1.0, 1.0]),
            "action": np.array(["cart_reminder", "service_recovery_call", "legacy"], dtype=object)}
    p = score(model, data)
    assert p[0] == pytest.approx(1 / (1 + math.exp(-1.0)), abs=1e-15)  # (3 - 1) / 2 * 1
    assert p[1] == pytest.approx(1 / (1 + math.exp(-1.0)), abs=1e-15)  # -1 + 2 * 1
    assert math.isnan(p[2])
    per_action = score(model, {"cart_items": [1.0], "tickets_open": [0.0]})
    assert set(per_action) == {"cart_reminder", "service_recovery_call"}
    assert score(model, data, action="cart_reminder")[2] == pytest.approx(1 / (1 + math.exp(0.5)), abs=1e-15)


@pytest.mark.parametrize("changes, field", [
    ({"format": "other/1"}, "format"),
    ({"features": ["orders_90d", "shoe_size"]}, "features[1]"),
    ({"weights": [-0.8]}, "weights"),
    ({"intercept": float("nan")}, "intercept"),
    ({"standardize": {"mean": [1.2, 14.0], "scale": [1.1, 0.0]}}, "standardize.scale[1]"),
    ({"task": "actions"}, "intercept"),
])
def test_refuses_what_the_service_refuses(changes, field):
    with pytest.raises(ModelFileError) as refused:
        parse_model(text(CHURN, **changes), file="churn.json", schema=STANDARD_FEATURES)
    assert refused.value.field == field


def test_a_misspelt_key_is_named_rather_than_the_one_it_misses():
    misspelt = json.loads(text(CHURN))
    misspelt["standardise"] = misspelt.pop("standardize")
    with pytest.raises(ModelFileError) as refused:
        parse_model(json.dumps(misspelt), file="churn.json")
    assert refused.value.field == "standardise"


def test_refuses_bad_actions():
    bad = json.loads(json.dumps(NBA))
    bad["actions"][1]["id"] = "cart_reminder"
    with pytest.raises(ModelFileError, match="listed twice"):
        parse_model(json.dumps(bad))
    bad = json.loads(json.dumps(NBA))
    bad["actions"][0]["channels"] = ["fax"]
    with pytest.raises(ModelFileError, match="not a channel"):
        parse_model(json.dumps(bad))


def test_refuses_unknown_keys_as_the_service_does():
    with pytest.raises(ModelFileError) as refused:
        parse_model(text(CHURN, notes="hand-set"))
    assert refused.value.field == "notes"
    for edit, field in [
        (lambda a: a.update(eligibilty=a.pop("eligibility")), "actions[0].eligibilty"),
        (lambda a: a.update(eligibility=None), "actions[0].eligibility"),
        (lambda a: a.update(eligibility=[{"any": [{"feature": "cart_items", "op": ">=", "value": 1}], "feature": "x"}]),
         "actions[0].eligibility[0].feature"),
        (lambda a: a.update(eligibility=[{"feature": "cart_items", "op": ">=", "value": 1, "unless": "vip"}]),
         "actions[0].eligibility[0].unless"),
    ]:
        bad = json.loads(json.dumps(NBA))
        edit(bad["actions"][0])
        with pytest.raises(ModelFileError) as refused:
            parse_model(json.dumps(bad))
        assert refused.value.field == field
    fine = json.loads(json.dumps(NBA))
    fine["trained"] = {"anything": [1, 2]}
    fine["actions"][0].update(fitted=True, trained={"rows": 3})
    assert parse_model(json.dumps(fine)).actions[0].extra == {"fitted": True, "trained": {"rows": 3}}


def test_the_repository_models_load():
    import os
    from nudge_models import feature_schema, load_model
    models = os.path.join(os.path.dirname(__file__), "..", "..")
    schema = feature_schema(os.path.join(models, "features.json"))
    assert schema[:len(STANDARD_FEATURES)] == STANDARD_FEATURES  # the file starts with the built-in set
    churn = load_model(os.path.join(models, "churn.json"), schema=schema)
    nba = load_model(os.path.join(models, "nba.json"), schema=schema)
    assert churn.task == "binary" and set(churn.features) <= set(schema)
    assert [a.id for a in nba.actions] == ["retention_offer", "service_recovery_call", "cart_reminder",
                                           "cross_sell_accessory", "promo_discount"]
