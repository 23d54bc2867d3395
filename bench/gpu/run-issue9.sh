#!/usr/bin/env bash
# Issue 9's GPU measurement, on the accelerator machine (staged by bench/gpu/prepare-issue9.sh): llama-long in float16
# on CUDA, the original, `fuse` and `window 1024 --impl auto` in one interleaved run each at 8192 and 16384 tokens.
# Done-when: fuse against the original; the window against the fused model at ≥ half its attention FLOP bound
# (`speedup.vsBest.attentionFlopBound` / 2 against `attentionCutVsBest` and `scorePathCut.vsBest`), and ≥ 3.6× at 16384.
# RUNNER defaults to the recipe's /tmp/gpu/run.sh (CUDA libraries and the staged onnxruntime-node); EP, SEQS and
# EXTRA (more bench options) may be set to try it elsewhere, e.g. EP=cpu SEQS=128 RUNNER= on a CPU machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-/tmp/issue9-out}
mkdir -p "$out"
runner=${RUNNER-bash /tmp/gpu/run.sh}
ep=${EP:-cuda}
for seq in ${SEQS:-8192 16384}; do
  echo "issue 9: $ep, float16, $seq tokens" >&2
  # shellcheck disable=SC2086  # RUNNER and EXTRA are word lists on purpose
  $runner node "$here/dist/bench/rewrites.js" --model "$here/llama-long-eager-ts-op17.onnx" --ep "$ep" --precision fp16 \
    --seq "$seq" --window 1024 --only fuse,window --min-runs 20 --min-time 2000 ${EXTRA:-} \
    > "$out/rewrites-$ep-fp16-$seq.json" 2> "$out/rewrites-$ep-fp16-$seq.err" || { tail -20 "$out/rewrites-$ep-fp16-$seq.err" >&2; exit 1; }
  tail -6 "$out/rewrites-$ep-fp16-$seq.err" >&2
done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>/dev/null || true
