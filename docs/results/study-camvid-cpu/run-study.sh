#!/usr/bin/env bash
# How this study is run (PLAN.md; docs/study.md): `segnas study run` in a separate clone of
# this repository at the study's fixed commit, JOBS units (strategy:seed) at a time in the
# plan's order (seed by seed), each finished run's small results (and its search's archs.csv
# and timings.csv, under searches/) copied into this checkout and committed here at once.
# Resumable: a unit finished before (its run.json) is skipped, a unit cut short continues from
# its search's rounds and its final training's checkpoint, in the
# clone's study-work/ (a fresh machine without the clone starts such a unit again).
#
#   bash docs/results/study-camvid-cpu/run-study.sh            # in the background:
#   nohup nice -n 19 bash docs/results/study-camvid-cpu/run-study.sh > study.log 2>&1 &
#
# Environment: STUDY_COMMIT (the commit every run uses, default 4790766), STUDY_CLONE (default
# ../study-run), JOBS (default 2: one unit per core; each search uses search.workers processes),
# UNITS (the units and their order, e.g. "controller:5 random:5"; default the plan's order;
# PLAN.md's note of 2026-12-06 gives the order used from then on), START_BEFORE (a time `date -d`
# reads, e.g. "2026-12-07 01:30 UTC": a unit not started by then is left out, for the budget).
set -euo pipefail
[ -z "${START_BEFORE:-}" ] || date -d "$START_BEFORE" > /dev/null ||
  { echo "START_BEFORE=$START_BEFORE: not a time date -d reads" >&2; exit 1; }
MAIN=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
STUDY=docs/results/study-camvid-cpu
COMMIT=${STUDY_COMMIT:-4790766}
CLONE=${STUDY_CLONE:-$MAIN/../study-run}
PY=${PYTHON:-$MAIN/.venv/bin/python}

if [ "${1:-}" = unit ]; then
  unit=$2
  name=${unit%%:*}-s${unit##*:}
  if [ -f "$MAIN/$STUDY/runs/$name/run.json" ] &&
    [ -z "$(git -C "$MAIN" status --porcelain -- "$STUDY/runs/$name")" ]; then
    echo "== $unit committed before: skipped"
    exit 0
  fi
  if [ -n "${START_BEFORE:-}" ] && [ "$(date +%s)" -ge "$(date -d "$START_BEFORE" +%s)" ]; then
    echo "== $unit not started: past START_BEFORE ($START_BEFORE)"
    exit 0
  fi
  cd "$CLONE"
  echo "== $unit start $(date -u)"
  mkdir -p study-logs
  PYTHONPATH=$CLONE "$PY" -m segnas.cli study run --plan $STUDY/study.yaml --only "$unit" \
    > "study-logs/$name.log" 2>&1
  echo "== $unit end $(date -u)"
  mkdir -p "$MAIN/$STUDY/runs/$name" "$MAIN/$STUDY/searches/$name"
  cp -r "$STUDY/runs/$name/." "$MAIN/$STUDY/runs/$name/"
  # every evaluated architecture and its timings, for the cost analysis (searches/README.md)
  cp "study-work/$name/search/archs.csv" "study-work/$name/search/timings.csv" \
    "$MAIN/$STUDY/searches/$name/"
  for _ in $(seq 1 30); do # another unit may be committing at the same moment
    if git -C "$MAIN" add "$STUDY/runs/$name" "$STUDY/searches/$name" &&
      git -C "$MAIN" commit -q -m "study: run $name (at $COMMIT)" -- \
        "$STUDY/runs/$name" "$STUDY/searches/$name"; then
      exit 0
    fi
    sleep 10
  done
  exit 1
fi

if [ ! -d "$CLONE" ]; then
  git clone -q "$MAIN" "$CLONE"
  git -C "$CLONE" checkout -q "$COMMIT"
fi
[ "$(git -C "$CLONE" rev-parse --short=7 HEAD)" = "${COMMIT:0:7}" ] ||
  { echo "$CLONE is not at $COMMIT: move it aside" >&2; exit 1; }
# runs committed here (by any machine) count as done in the clone
[ -d "$MAIN/$STUDY/runs" ] && mkdir -p "$CLONE/$STUDY/runs" && cp -rn "$MAIN/$STUDY/runs/." "$CLONE/$STUDY/runs/"
cd "$CLONE"
export PYTHONPATH=$CLONE PATH=$(dirname "$PY"):$PATH
"$PY" -m segnas.cli config use camvid-cpu
for stage in prepare split cache_stem; do "$PY" stages/$stage.py --params params.yaml; done
echo "== study at $COMMIT $(date -u)"
units=${UNITS:-$("$PY" -c "from segnas.study.plan import StudyPlan
print(' '.join(f'{s}:{n}' for s, n in StudyPlan.from_file('$STUDY/study.yaml').runs()))")}
echo "$units" | tr ' ' '\n' | xargs -P "${JOBS:-2}" -I{} bash "$MAIN/$STUDY/run-study.sh" unit {}
echo "== done $(date -u)"
