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
# Exactness on the device, in float16 against float32 CPU: the fused model and the blocked window against the
# original and the window's mask form, at 2048 tokens (compare's max |Δ|, cosine, KL and top-1 per output).
m="$here/llama-long-eager-ts-op17.onnx"
t=$(mktemp -d)
cli() { $runner node "$here/dist/cli.js" "$@"; }
cli rewrite "$m" --precision fp16 -o "$t/original.onnx" > /dev/null
cli rewrite "$m" --fuse --fuse-target "$ep" --precision fp16 -o "$t/fuse.onnx" > /dev/null
cli rewrite "$m" --window 1024 --impl mask --precision fp16 -o "$t/window-mask.onnx" > /dev/null
cli rewrite "$m" --window 1024 --impl blocked --precision fp16 -o "$t/window-blocked.onnx" > /dev/null
cli compare "$t/original.onnx" "$t/fuse.onnx" --ep "$ep" --seq "${CHECK_SEQ:-2048}" --json > "$out/compare-fuse-$ep-fp16.json"
cli compare "$t/window-mask.onnx" "$t/window-blocked.onnx" --ep "$ep" --seq "${CHECK_SEQ:-2048}" --json > "$out/compare-window-$ep-fp16.json"
cli compare "$m" "$t/original.onnx" --ep "$ep" --seq "${CHECK_SEQ:-2048}" --json > "$out/compare-fp16-vs-fp32-$ep.json"
rm -rf "$t"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.csv" 2>/dev/null || true
