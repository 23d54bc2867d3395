// The dense baseline that the Speed tab measures sparse variants against (issue 9): the fastest model that computes
// exactly what the original computes, timed in the same interleaved run. When none of the variants being timed is such
// a model, the benchmark adds one itself: the original with its sites fused into onnxruntime's fastest exact kernel for
// the provider (the `fuse` rule). Without it every speedup would be against the exported eager graph, which nobody
// deploys. It is not one of the session's variants: it is timed, not kept, compared or exported.
import type { CoreClient } from '../cli/core-client';
import { appliesToNone } from '../rewriters/applies-to-none';
import type { Variant } from '../protocol';
import { DENSE_BASELINE } from '../shared/run-results';
import type { ExecutionProvider } from '../runtime/protocol';
import type { RuleStep } from '../shared/rule-steps';

/** The fused model as a variant, or null when `fuse` applies to no site (the model is fused already, or cannot be). */
export async function denseBaseline(core: CoreClient, modelPath: string, ep: ExecutionProvider, signal: AbortSignal): Promise<Variant | null> {
  const steps: RuleStep[] = [{ rule: 'fuse', params: { target: ep === 'cuda' ? 'cuda' : 'cpu', op: 'auto' } }];
  try {
    const preview = await core.request({ type: 'preview', file: modelPath, steps }, signal);
    return { id: DENSE_BASELINE, label: 'fused (dense baseline, added)', steps, preview };
  } catch (e) {
    if (appliesToNone(e, 'fuse')) return null;
    throw e;
  }
}
