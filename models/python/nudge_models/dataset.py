"""Reading the CSV datasets ``nudge dataset`` writes, without pandas."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Dict, List, Optional, Sequence

import numpy as np

#: Columns of either dataset file that are not features (FeatureSet.reservedNames in Swift: no feature may take one).
RESERVED = {"customer_id", "cutoff", "churn", "delivered_at", "recommendation_id", "action", "channel",
            "viewed", "dismissed", "accepted"}


def instant_millis(text: str) -> int:
    """Unix milliseconds of ``2026-10-21``, ``2026-10-21T00:00:00.000Z`` or any ISO-8601 time with an offset."""
    if len(text) == 10:
        text += "T00:00:00Z"
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    delta = moment - epoch
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@dataclass
class Dataset:
    """A labelled dataset: ``X`` (rows × features), ``y`` (0/1), ``times`` (Unix ms of cutoff or delivery),
    ``ids`` (customer ids) and ``groups`` (the action of offer rows; empty strings for churn rows)."""

    features: List[str]
    X: np.ndarray
    y: np.ndarray
    times: np.ndarray
    ids: np.ndarray
    groups: np.ndarray
    kind: str

    def __len__(self) -> int:
        return len(self.y)

    @staticmethod
    def instant(text: str) -> int:
        """Unix milliseconds of a date or ISO-8601 time (to compare with ``times``)."""
        return instant_millis(text)

    def rows(self, mask) -> "Dataset":
        """The rows selected by a boolean mask or an index array."""
        return Dataset(self.features, self.X[mask], self.y[mask], self.times[mask], self.ids[mask], self.groups[mask], self.kind)

    def frame(self) -> Dict[str, np.ndarray]:
        """Columns by name (features, plus ``action`` for offers): what :func:`nudge_models.score` takes."""
        columns = {name: self.X[:, j] for j, name in enumerate(self.features)}
        if self.kind == "offers":
            columns["action"] = self.groups
        return columns


def read_dataset(path: str, kind: Optional[str] = None, features: Optional[Sequence[str]] = None) -> Dataset:
    """Reads ``dataset.csv`` (kind ``churn``: label ``churn``, time ``cutoff``) or ``offers.csv`` (kind ``offers``:
    label ``accepted``, time ``delivered_at``, group ``action``); the kind is guessed from the header when not given.
    Features are every non-reserved column unless ``features`` names them."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        records = [r for r in reader if r]
    if kind is None:
        kind = "offers" if "accepted" in header else "churn"
    label, time = ("churn", "cutoff") if kind == "churn" else ("accepted", "delivered_at")
    names = list(features) if features is not None else [h for h in header if h not in RESERVED]
    index = {h: i for i, h in enumerate(header)}
    for needed in [label, time, "customer_id", *names] + (["action"] if kind == "offers" else []):
        if needed not in index:
            raise ValueError(f"{path}: column {needed!r} is missing from the header")
    X = np.array([[float(r[index[n]]) for n in names] for r in records], dtype=np.float64).reshape(len(records), len(names))
    y = np.array([float(r[index[label]]) for r in records], dtype=np.float64)
    times = np.array([instant_millis(r[index[time]]) for r in records], dtype=np.int64)
    ids = np.array([r[index["customer_id"]] for r in records], dtype=object)
    groups = np.array([r[index["action"]] if kind == "offers" else "" for r in records], dtype=object)
    return Dataset(names, X, y, times, ids, groups, kind)


def read_definitions(path: str) -> Optional[Dict[str, str]]:
    """What each feature column of the dataset at ``path`` computed, from the ``<path>.definitions.json`` that
    ``nudge dataset`` writes beside it (``{name: signature}``), or None when there is none. A model records
    them in ``trained.feature_definitions``, and the service refuses it if its feature file computes one of
    them otherwise."""
    sidecar = path + ".definitions.json"
    if not os.path.exists(sidecar):
        return None
    try:
        with open(sidecar, encoding="utf-8") as f:
            root = json.load(f)
    except ValueError as e:
        raise ValueError(f"{sidecar}: not readable as JSON ({e}); rebuild it with `nudge dataset` or delete it") from None
    entries = root.get("feature_definitions") if isinstance(root, dict) else None
    if not isinstance(entries, dict) or not all(isinstance(v, str) for v in entries.values()):
        raise ValueError(f"{sidecar}: feature_definitions: expected an object of strings; rebuild it with "
                         "`nudge dataset` or delete it")
    return dict(entries)


def holdout_split(times: np.ndarray, after: Optional[int] = None, share: float = 0.2):
    """Train and holdout row indices, exactly as ``nudge train`` splits: with ``after``, the holdout is every row
    later than it; otherwise it starts at the time of the row at position floor(n × (1 − share)) in time order
    (whole cutoffs together), and is empty when that would hold out everything."""
    n = len(times)
    boundary = None
    if after is not None:
        boundary = after + 1
    elif n > 0:
        ordered = np.sort(times)
        position = min(max(int(n * (1.0 - share)), 0), n - 1)
        if ordered[position] > ordered[0]:
            boundary = int(ordered[position])
    if boundary is None:
        return np.arange(n), np.array([], dtype=np.int64)
    holdout = times >= boundary
    return np.flatnonzero(~holdout), np.flatnonzero(holdout)
