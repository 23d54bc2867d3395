// A fused attention operator's probabilities as a graph value: ONNX Attention (qk_matmul_output_mode 3) and
// com.microsoft GroupQueryAttention (qk_output 2) export them, after the softmax, as their optional 4th output when
// asked. The one way both the share-attn rule (which feeds them to another site) and the runtime's attention maps
// (which make them a graph output) switch that output on. Other fused operators give at most pre-softmax scores.
import { fusedKey } from '../analysis/attention/fused';
import { attr, type GraphBuilder } from '../analysis/ir/builder';
import type { Node, Value } from '../analysis/ir/graph';

/** Fused operators that export their probabilities on request, with the attribute that asks and its value. */
const EXPOSES: Record<string, { attr: string; mode: number }> = {
  'onnx.Attention': { attr: 'qk_matmul_output_mode', mode: 3 },
  'com.microsoft.GroupQueryAttention': { attr: 'qk_output', mode: 2 },
};

/** Whether a fused operator (by its fusedKey, which is also its site's form) can export its probabilities. */
export function exposesProbabilities(key: string): boolean {
  return Object.hasOwn(EXPOSES, key);
}

/**
 * The probability output of fused operator `n`, switched on and named `name` (made unique). An output the model already
 * has is returned as it is when it holds the probabilities. When it holds something else (scores before the softmax),
 * switching it changes what its readers get: refused, unless `switchInUse` (a throwaway copy read only for the maps).
 */
export function fusedProbabilities(builder: GraphBuilder, n: Node, name: string, options: { switchInUse?: boolean } = {}): Value {
  const key = fusedKey(n);
  const how = exposesProbabilities(key) ? EXPOSES[key] : undefined;
  if (!how) throw new Error(`${key} '${n.name}' does not export its attention probabilities`);
  const existing = n.outputs[3];
  if (existing?.name) {
    const mode = n.attr(how.attr)?.i;
    const current = mode === undefined || mode === null ? 0 : Number(String(mode));
    if (current !== how.mode && !options.switchInUse) {
      throw new Error(`${key} '${n.name}' already exports '${existing.name}' with ${how.attr} ${current}, not the probabilities`);
    }
    builder.setAttribute(n, how.attr, attr.int(how.mode));
    return existing;
  }
  builder.setAttribute(n, how.attr, attr.int(how.mode));
  while (n.outputs.length < 3) n.outputs.push(builder.graph.detachedValue());
  const v = builder.graph.value(builder.uniqueName(name));
  v.producer = n;
  v.producerIndex = 3;
  n.outputs[3] = v;
  return v;
}
