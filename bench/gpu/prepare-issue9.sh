#!/usr/bin/env bash
# Stages issue 9's GPU measurement for the accelerator machine (../shared/gpu/README.md has the recipe this builds on).
# Run here, from the project root, after `bash ../shared/gpu/prepare.sh`: it builds, then puts into .gpu/issue9/ (git
# ignored, about 25 MB) what the measurement reads: the rewrite benchmark, the CLI and the runtime worker (bundles), the
# llama-long fixture, and the script that runs on the device. Then, on the device: the recipe's four calls, and a fifth
# right after them with `carry [".gpu/issue9"]` and the command `bash .gpu/issue9/run-issue9.sh` (its JSON comes back
# under $OUT).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
npm run -s build
fixture=${FIXTURE:-../shared/fixtures/llama-long-eager-ts-op17/model.onnx}
[ -f "$fixture" ] || { echo "prepare-issue9: no fixture at $fixture" >&2; exit 1; }
rm -rf .gpu/issue9 && mkdir -p .gpu/issue9/dist/bench
cp dist/bench/rewrites.js .gpu/issue9/dist/bench/
cp dist/worker.js dist/cli.js .gpu/issue9/dist/
cp "$fixture" .gpu/issue9/llama-long-eager-ts-op17.onnx
cp bench/gpu/run-issue9.sh .gpu/issue9/
du -sh .gpu/issue9
