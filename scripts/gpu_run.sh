#!/usr/bin/env bash
# The GPU issue's one run (issue 31), on a GPU machine lent through the device tool:
#   bash scripts/gpu_run.sh              on the GPU machine: $OUT receives the logs and the store
#   bash scripts/gpu_run.sh --rehearse   here, on CPU: the same steps at a size that runs in a minute
# Steps: install the carried wheels the machine lacks (.whl/: hydra-core, omegaconf,
# antlr4-python3-runtime), the `gpu`-marked tests, the GPU suite (`gpu`: throughput of the classic
# cells with cuDNN and native, TF32 off and on, float32 and bfloat16; the fastrnns and DeepBench
# anchors; gradients on CUDA) and the crossover in rounds (`crossover_gpu`), each into one store,
# then the report; the store and the report travel back as one tar file each (the device tool
# brings back at most 8 files). A step that fails is logged and the next one still runs. Each
# step has a time limit (LIMITS, seconds; SIGINT at the limit, so a sweep stops between points
# and what it stored stays): the whole run ends within about 7 minutes whatever the card's pace,
# and a second run resumes where the first stopped (stored points are skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
REHEARSE=0; [ "${1:-}" = "--rehearse" ] && REHEARSE=1
OUT=${OUT:-results/gpu/rehearsal}
mkdir -p "$OUT"
PY=${PY:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site || { echo "gpu_run: the carried wheels did not install" >&2; exit 2; }
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
# the store resumes on a warm machine (a second run measures only what the first did not reach)
STORE=/tmp/gpu-store; [ $REHEARSE = 1 ] && { STORE=/tmp/gpu-store-rehearsal; rm -rf "$STORE"; }
# ...measured by this code only: a store left by other code (the hash of a point names its
# configuration, not the code) is set aside
CODE=$(find bench conf -type f \( -name '*.py' -o -name '*.yaml' \) | sort | xargs cat | sha256sum | cut -c1-16)
[ -d "$STORE" ] && [ "$(cat "$STORE/.code" 2>/dev/null)" != "$CODE" ] && mv "$STORE" "$STORE.other.$$"
mkdir -p "$STORE" && echo "$CODE" > "$STORE/.code"
log() { echo "=== $(date -u +%FT%TZ) $*" | tee -a "$OUT/run.log"; }
# time limits per step (tests, suite, crossover, report), seconds; GPU_LIMITS="60 150 180 40" overrides
read -r L_TESTS L_SUITE L_CROSS L_REPORT <<< "${GPU_LIMITS:-60 150 180 40}"
limited() { local s=$1; shift; timeout --signal=INT --kill-after=15 "$s" "$@"; local rc=$?
  case $rc in 124) echo "=== $(date -u +%FT%TZ) time limit ($s s) reached: stopped; the stored points stay" >&2 ;;
    137) echo "=== $(date -u +%FT%TZ) time limit ($s s) reached and the step killed 15 s later" >&2 ;; esac
  return $rc; }
if [ $REHEARSE = 1 ]; then
  # the plumbing on CPU: the same commands, presets that fit a CPU (the GPU presets need CUDA)
  # (overrides only of keys the presets do not sweep)
  SUITE=(ci_throughput); CROSS=(throughput_crossover_fused); SHRINK=(device=cpu measure.min_time_s=0.01
    measure.min_reps=2 measure.warmup=1 measure.max_reps=3)
  ROUNDS=(--rounds 3)
else
  SUITE=(gpu); CROSS=(crossover_gpu); SHRINK=(); ROUNDS=()
fi
log "start (rehearse=$REHEARSE) at $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '-')" 2>&1 | tee -a "$OUT/run.log"
log "gpu-marked tests"
limited "$L_TESTS" $PY -m pytest -m gpu -q -p no:cacheprovider tests 2>&1 | tail -20 | tee -a "$OUT/run.log"
log "suite ${SUITE[*]}"
limited "$L_SUITE" $PY -m bench.run.suite "${SUITE[@]}" results_dir=$STORE progress=false "${SHRINK[@]}" >> "$OUT/run.log" 2>&1
log "crossover ${CROSS[*]} in rounds"
if [ $REHEARSE = 1 ]; then
  limited "$L_CROSS" $PY -m bench.run.rounds "${CROSS[@]}" "${ROUNDS[@]}" results_dir=$STORE progress=false \
    "${SHRINK[@]}" model.hidden_size=16 >> "$OUT/run.log" 2>&1
else
  limited "$L_CROSS" $PY -m bench.run.suite "${CROSS[@]}" results_dir=$STORE progress=false >> "$OUT/run.log" 2>&1
fi
log "report"
limited "$L_REPORT" $PY -m analysis.report "$STORE" --out /tmp/gpu-report >> "$OUT/run.log" 2>&1
tar czf "$OUT/store.tgz" -C "$STORE" . && tar czf "$OUT/report.tgz" -C /tmp/gpu-report .
log "end: $(ls "$STORE" | wc -l) records; $OUT: $(ls "$OUT" | tr '\n' ' ')"
