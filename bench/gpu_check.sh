#!/usr/bin/env bash
# The GPU check: every CUDA path of the project run once and timed, with the GPU's name, in
# about 8 minutes on one GPU (docs/performance.md, "GPU check"). Run it before a long search.
#
#   bench/gpu_check.sh prepare [--camvid ROOT] [--train 100] [--val 20] [--data .gpu-check]
#       once, where CamVid is (default ../shared/data/CamVid), with the project's venv: a CamVid
#       subset (prepared layout + meta split, ~31 MiB) in the git-ignored folder .gpu-check/
#   bench/gpu_check.sh [--device cuda|cpu] [--tiny] [--data .gpu-check]
#       the check, from any copy of the repository that holds .gpu-check/ (carry it): results
#       in $OUT (default gpu-check-out/): gpu_check.json, gpu_check.md, one JSON per step, logs/
#
# It needs only python3 with torch, torchvision, numpy, pandas, Pillow and PyYAML (not dvc,
# dvclive, snakemake, jsonschema): PYTHON (default .venv/bin/python where it exists, else
# python3) runs the repository's code with PYTHONPATH=. . Each step runs even when an earlier one failed; the exit status is 0 only when
# every step ran and every check passed (1: a step or check failed; 2: no subset, or no GPU for
# --device cuda). --tiny: tiny sizes, seconds on a CPU (the test suite runs `--device cpu
# --tiny`). GPU_CHECK_STEP_TIMEOUT: seconds per step (default 300).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2
# the project's venv where there is one (here), else the machine's python3 (the bare GPU machine)
if [[ -z ${PYTHON:-} ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

usage() { sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

if [[ ${1:-} == prepare ]]; then
    shift
    exec "$PYTHON" bench/gpu_check.py prepare "$@"
fi

DEVICE=cuda
TINY=""
DATA=.gpu-check
while (($#)); do
    case $1 in
        --device) DEVICE=${2:?--device needs cuda or cpu}; shift 2 ;;
        --tiny) TINY=--tiny; shift ;;
        --data) DATA=${2:?--data needs a folder}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$1' (see bench/gpu_check.sh --help)" >&2; exit 2 ;;
    esac
done
if [[ ! -f $DATA/subset.json ]]; then
    echo "gpu_check.sh: $DATA/subset.json does not exist: run 'bench/gpu_check.sh prepare' where" \
        "the CamVid data is, and carry $DATA with the run" >&2
    exit 2
fi
# The device, before minutes of steps that would all fail without it.
if ! "$PYTHON" -c '
import sys, torch
device = sys.argv[1]
if device.startswith("cuda") and not torch.cuda.is_available():
    sys.exit(f"gpu_check.sh: --device {device}, but torch {torch.__version__} (CUDA build "
             f"{torch.version.cuda}) sees no CUDA GPU; run it on a GPU machine, or on the CPU "
             "with --device cpu --tiny")
name = torch.cuda.get_device_name(device) if device.startswith("cuda") else "the CPU"
print(f"== gpu-check on {name}, torch {torch.__version__}, Python {sys.version.split()[0]}")
' "$DEVICE"; then
    exit 2
fi
OUT=${OUT:-gpu-check-out}
TIMEOUT=${GPU_CHECK_STEP_TIMEOUT:-300}
mkdir -p "$OUT/logs" || exit 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX") || exit 2
trap 'rm -rf "$WORK"' EXIT

if [[ -n $TINY ]]; then
    LATENCY=(--size 64x96 --warmup 1 --repeats 2 --threads 1)
    TRAIN=(--size 65x65 --batch 2 --warmup 1 --repeats 2 --threads 1)
else
    LATENCY=(--size 360x480 1024x2048 --warmup 10 --repeats 50)
    TRAIN=(--size 321x321 --batch 32 --warmup 3 --repeats 10)
fi

: >"$OUT/steps.tsv"
# step NAME COMMAND...: run it under the timeout, its output to the terminal and logs/NAME.log,
# its exit status and seconds to steps.tsv.
step() {
    local name=$1 start rc
    shift
    echo "== gpu-check $name: $*"
    start=$(date +%s.%N)
    timeout "$TIMEOUT" "$@" 2>&1 | tee "$OUT/logs/$name.log"
    rc=${PIPESTATUS[0]}
    printf '%s\t%s\t%s\n' "$name" "$rc" "$(awk -v a="$start" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%.1f", b - a }')" >>"$OUT/steps.tsv"
    ((rc == 0)) || echo "== gpu-check $name: exit status $rc (see $OUT/logs/$name.log)"
}

step latency "$PYTHON" -m segnas.cli bench latency --device "$DEVICE" --arch arch0 arch1 \
    --plain --backend eager "${LATENCY[@]}" --json "$OUT/latency.json"
step train_step "$PYTHON" -m segnas.cli bench train --device "$DEVICE" "${TRAIN[@]}" \
    --json "$OUT/train_step.json"
for name in search final-train rewards; do
    step "$name" "$PYTHON" bench/gpu_check.py "$name" --device "$DEVICE" --data "$DATA" \
        --work "$WORK" --out "$OUT" $TINY
done
"$PYTHON" bench/gpu_check.py summary --device "$DEVICE" --out "$OUT"
