// `bench --baseline fused`: the dense baseline written for the run. The first model fused into onnxruntime's fastest
// exact kernel for the provider (the `fuse` rule) goes into a temporary folder and is timed with the others; at each
// point the faster of the first model and it is the baseline. So speedups can be read against the dense model a
// deployment would run without the user writing it first, as the Speed tab and bench:rewrites do.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { appliesToNone } from '../rewriters/applies-to-none';
import { rewriteModel } from '../rewriters/pipeline';
import type { ExecutionProvider } from '../runtime/protocol';

export interface FusedBaseline {
  /** The fused model, or null when the first model has nothing to fuse (then the first model is the baseline). */
  file: string | null;
  note: string;
  dispose: () => void;
}

export function writeFusedBaseline(first: string, ep: ExecutionProvider): FusedBaseline {
  const dir = mkdtempSync(path.join(tmpdir(), 'attention-lens-bench-fused-'));
  const dispose = () => rmSync(dir, { recursive: true, force: true });
  const file = path.join(dir, `${path.basename(first, '.onnx')}.fused.onnx`);
  try {
    const target = ep === 'cuda' ? 'cuda' : 'cpu';
    rewriteModel(first, [{ rule: 'fuse', params: { target } }], file);
    return { file, note: `${path.basename(file)}: ${path.basename(first)} fused for ${target} (the fuse rule), written for this run and removed after`, dispose };
  } catch (e) {
    dispose();
    if (appliesToNone(e, 'fuse')) {
      return { file: null, note: `--baseline fused: ${path.basename(first)} has nothing to fuse (${(e as Error).message}); the first model is the baseline`, dispose: () => undefined };
    }
    throw e;
  }
}
