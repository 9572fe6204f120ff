#!/usr/bin/env bash
# Installs nudge-models with its test extras (numpy, scikit-learn, pytest from PyPI) and runs its tests,
# including the Swift-vs-scikit-learn parity check against the `nudge` that `swift test` built.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "$here[test]"
cd "$here"
# Fail rather than skip the parity test when no `nudge` was built: CI must not pass it by accident.
NUDGE_PARITY_REQUIRED=1 "$python" -m pytest -q
