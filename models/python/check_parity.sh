#!/usr/bin/env bash
# Swift trainer vs scikit-learn on the same point-in-time dataset, end to end:
#   nudge generate → nudge dataset → nudge train (Swift) and python -m nudge_models.train (sklearn)
#   → nudge evaluate (the service's scorer) on both model files → python -m nudge_models.parity.
# Fails when coefficients differ by more than 1e-3, holdout AUCs by more than 1e-4, or the service and
# nudge_models.score disagree on any probability by more than 1e-12. About a minute after the build.
#
# Environment: NUDGE_BIN (a built `nudge`; default: `swift build` in the repo, debug), WORK (scratch
# directory; default a fresh temporary one), PYTHON (default python3, with numpy and scikit-learn).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
python="${PYTHON:-python3}"
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"

if ! "$python" -c 'import numpy, sklearn' 2>/dev/null; then
    echo "check_parity: numpy and scikit-learn are needed: pip install ./models/python" >&2
    exit 2
fi
nudge="${NUDGE_BIN:-}"
if [ -z "$nudge" ]; then
    (cd "$root" && swift build --product nudge >&2)
    nudge="$root/.build/debug/nudge"
fi

# 300k events of 1,500 customers span about 140 days: 13 labelled weekly cutoffs after a 30-day warm-up.
# Cutoffs fall on 2026-10-21 + 7k days (the generator starts 2026-09-21); the last three are held out.
holdout=2026-12-23
"$nudge" generate --events 300000 --customers 1500 --duplicate-rate 0.01 --malformed-rate 0.001 --out "$work/history.jsonl" 2>/dev/null
"$nudge" dataset --input "$work/history.jsonl" --out "$work/dataset.csv" --offers-out "$work/offers.csv" 2>/dev/null

export PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}"
status=0
for task in churn nba; do
    if [ "$task" = churn ]; then data="$work/dataset.csv"; input=(--dataset "$data"); else data="$work/offers.csv"; input=(--offers "$data" --actions "$root/models/actions.json"); fi
    echo "== $task"
    "$nudge" train --task "$task" "${input[@]}" --l2 1 --holdout-after "$holdout" --version parity --out "$work/swift-$task.json" 2>/dev/null
    "$python" -m nudge_models.train --task "$task" "${input[@]}" --l2 1 --holdout-after "$holdout" --version parity --feature-file "$root/models/features.json" --out "$work/sklearn-$task.json" > "$work/sklearn-$task.figures.json"
    "$nudge" evaluate --model "$work/swift-$task.json" --dataset "$data" --after "$holdout" --scores-out "$work/swift-$task.scores.csv" --report "$work/swift-$task.eval.md" > /dev/null
    "$nudge" evaluate --model "$work/sklearn-$task.json" --dataset "$data" --after "$holdout" --scores-out "$work/sklearn-$task.scores.csv" --report "$work/sklearn-$task.eval.md" > /dev/null
    "$python" -m nudge_models.parity --dataset "$data" --after "$holdout" \
        --swift-model "$work/swift-$task.json" --python-model "$work/sklearn-$task.json" \
        --swift-scores "$work/swift-$task.scores.csv" --python-model-swift-scores "$work/sklearn-$task.scores.csv" || status=1
done
echo "check_parity: files in $work"
exit $status
