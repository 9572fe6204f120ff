#!/usr/bin/env bash
# Starter models from generated history, timed: nudge generate → nudge dataset → nudge train (churn, nba).
#
#   benchmarks/train.sh                      # models and reports in $WORK (default /tmp/nudge-train)
#   OUT=models benchmarks/train.sh           # replace models/churn.json and models/nba.json
#
# Environment: NUDGE_BIN (default: a release build, built here if missing), EVENTS (1000000), CUSTOMERS
# (5000: at the generator's ~1.4 events per customer per day, 1M events then span ~140 days, room for a
# 30-day warm-up, 13 labelled weekly cutoffs and a 30-day churn horizon), SEED (42), VERSION (today.1),
# CHURN_L2 (1), NBA_L2 (30: the best holdout of 1, 10, 30, 100 on the starter history), WORK, OUT (where
# the model files go; default $WORK), FEATURES (the feature file; default models/features.json).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
events="${EVENTS:-1000000}"
customers="${CUSTOMERS:-5000}"
seed="${SEED:-42}"
version="${VERSION:-$(date -u +%F).1}"
work="${WORK:-/tmp/nudge-train}"
out="${OUT:-$work}"
mkdir -p "$work" "$out"
nudge="${NUDGE_BIN:-$root/.build/release/nudge}"
if [ ! -x "$nudge" ]; then
    (cd "$root" && swift build -c release --product nudge >&2)
fi

timed() {  # label, command…: runs it and prints the wall time
    local label="$1"; shift
    local start end
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    awk -v l="$label" -v s="$start" -v e="$end" 'BEGIN { printf "%s: %.2f s\n", l, e - s }' | tee -a "$work/timings.txt"
}

: > "$work/timings.txt"
timed "generate $events events" "$nudge" generate --events "$events" --customers "$customers" --seed "$seed" \
    --duplicate-rate 0.001 --malformed-rate 0.001 --out "$work/history.jsonl"
features="${FEATURES:-$root/models/features.json}"
timed "dataset (replay $events events)" "$nudge" dataset --input "$work/history.jsonl" --feature-file "$features" \
    --out "$work/dataset.csv" --offers-out "$work/offers.csv"
timed "train churn" "$nudge" train --task churn --dataset "$work/dataset.csv" --feature-file "$features" --version "$version" --l2 "${CHURN_L2:-1}" \
    --out "$out/churn.json" --report "$work/churn.report.md"
timed "train nba" "$nudge" train --task nba --offers "$work/offers.csv" --feature-file "$features" --actions "$root/models/actions.json" \
    --version "$version" --l2 "${NBA_L2:-30}" --out "$out/nba.json" --report "$work/nba.report.md"
echo "timings in $work/timings.txt; reports $work/churn.report.md, $work/nba.report.md"
