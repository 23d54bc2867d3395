// The one way a fused operator's probability output is switched on (share-attn's sources and the runtime's maps).
import { describe, expect, it } from 'vitest';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel } from '../../src/analysis/ir/load';
import { exposesProbabilities, fusedProbabilities } from '../../src/rewriters/probabilities';
import { fixture } from '../helpers/fixtures';

function gqa() {
  const b = new GraphBuilder(loadModel(fixture('fused-gqa').model));
  return { b, n: b.graph.nodes.find((x) => x.opType === 'GroupQueryAttention')! };
}

describe('fused probabilities', () => {
  it('knows which operators export them', () => {
    expect(['onnx.Attention', 'com.microsoft.GroupQueryAttention'].map(exposesProbabilities)).toEqual([true, true]);
    expect(['com.microsoft.MultiHeadAttention', 'unfused', 'constructor'].map(exposesProbabilities)).toEqual([false, false, false]);
  });

  it('switches the 4th output on once and hands the same value back after', () => {
    const { b, n } = gqa();
    const v = fusedProbabilities(b, n, 'probs');
    expect(n.outputs[3]).toBe(v);
    expect(v.name).toBe('probs');
    expect(Number(n.attr('qk_output')?.i)).toBe(2);
    expect(fusedProbabilities(b, n, 'again')).toBe(v);
  });

  it('refuses to turn an output holding pre-softmax scores into probabilities, unless told the copy is throwaway', () => {
    const { b, n } = gqa();
    const v = fusedProbabilities(b, n, 'scores');
    b.setAttribute(n, 'qk_output', attr.int(1));
    expect(() => fusedProbabilities(b, n, 'probs')).toThrow(/already exports 'scores' with qk_output 1/);
    expect(fusedProbabilities(b, n, 'probs', { switchInUse: true })).toBe(v);
    expect(Number(n.attr('qk_output')?.i)).toBe(2);
  });
});
