// Synthesized inputs follow the layout and mask meaning the analysis read off the graph: a sequence-first model gets
// [sequence, batch] ids, a key-padding mask whose true means padding gets all false (attend to every key), and the
// worker reads the model itself when the caller sends no analysis.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InputInfo } from '../../src/analysis/report/types';
import type { RuntimeClient } from '../../src/runtime/client';
import { mergeInputInfo } from '../../src/runtime/inputs/roles';
import { synthesizeInputs } from '../../src/runtime/inputs/synthesize';
import { toFloat64 } from '../../src/runtime/tensor';
import { fixture, startClient } from './helpers';

const seqFirst: InputInfo[] = [
  { name: 'ids', dtype: 'int64', shape: ['n', 'b'], role: 'input_ids', vocabSize: 10, axes: { sequence: 0, batch: 1 } },
  { name: 'pos', dtype: 'int64', shape: ['n', 'b'], role: 'position_ids', axes: { sequence: 0, batch: 1 } },
  { name: 'pad', dtype: 'bool', shape: ['b', 'n'], role: 'attention_mask', axes: { batch: 0, sequence: 1 }, maskMeaning: 'pad' },
  { name: 'memory', dtype: 'float32', shape: ['m', 'b', 16], role: 'hidden_states', axes: { sequence: 0, batch: 1 } },
];

describe('synthesis by layout', () => {
  it('places sequence and batch on the axes the analysis found', () => {
    const s = synthesizeInputs(seqFirst, { batch: 2, seq: 5, past: 3 });
    expect(s.tensors.ids.dims).toEqual([5, 2]);
    expect(s.tensors.pos.dims).toEqual([5, 2]);
    // Positions run along the sequence axis (axis 0), the same for both batch items: [[3,3],[4,4],...].
    expect(Array.from(toFloat64(s.tensors.pos))).toEqual([3, 3, 4, 4, 5, 5, 6, 6, 7, 7]);
    // The mask spans past + new keys, and false (not padding) everywhere.
    expect(s.tensors.pad.dims).toEqual([2, 8]);
    expect(Array.from(s.tensors.pad.data as Uint8Array).every((v) => v === 0)).toBe(true);
    expect(s.tensors.memory.dims).toEqual([5, 2, 16]);
    expect(s.shape).toEqual({ batch: 2, seq: 5, past: 3, hasSequence: true });
    expect(s.warnings).toEqual([]);
  });

  it('reads batch and sequence off given sequence-first tensors', () => {
    const ids = { dtype: 'int64' as const, dims: [7, 3], data: new BigInt64Array(21) };
    const s = synthesizeInputs(seqFirst, {}, { ids });
    expect(s.shape).toMatchObject({ batch: 3, seq: 7 });
    expect(s.tensors.pad.dims).toEqual([3, 7]);
  });

  it('fills masks per their meaning, and warns where it is not known', () => {
    const mask = (maskMeaning?: 'keep' | 'pad', dtype = 'bool'): InputInfo => ({ name: 'm', dtype, shape: [1, 4], role: 'attention_mask', ...(maskMeaning ? { maskMeaning } : {}) });
    const values = (info: InputInfo) => {
      const s = synthesizeInputs([info]);
      return { values: [...new Set(Array.from(toFloat64(s.tensors.m)))], warnings: s.warnings };
    };
    expect(values(mask('keep'))).toEqual({ values: [1], warnings: [] });
    expect(values(mask('pad'))).toEqual({ values: [0], warnings: [] });
    expect(values(mask('pad', 'int64'))).toEqual({ values: [0], warnings: [] });
    const unknown = values(mask());
    expect(unknown.values).toEqual([1]);
    expect(unknown.warnings).toEqual(['m: whether true means attend or padding is not known; filled with true (attend)']);
    // An additive float mask of rank 4 attends with 0, as before.
    const additive = synthesizeInputs([{ name: 'b', dtype: 'float32', shape: [1, 1, 2, 2], role: 'attention_mask' }]);
    expect([...new Set(Array.from(toFloat64(additive.tensors.b)))]).toEqual([0]);
    expect(additive.warnings).toEqual([]);
  });

  it('takes the analysis’ layout and meaning only for the shape they were read from', () => {
    const [merged] = mergeInputInfo([{ name: 'pad', dtype: 'bool', shape: ['b', 'n'] }], seqFirst);
    expect(merged).toMatchObject({ role: 'attention_mask', axes: { batch: 0, sequence: 1 }, maskMeaning: 'pad' });
    const [other] = mergeInputInfo([{ name: 'ids', dtype: 'int64', shape: ['n', 'b', 'x'] }], seqFirst);
    expect(other.axes).toBeUndefined();
  });
});

describe('a sequence-first fixture with a key-padding mask, without the caller’s analysis', () => {
  let client: RuntimeClient;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ client, close } = await startClient());
  });
  afterAll(async () => close());

  it('is fed [sequence, batch] ids and a mask that pads nothing, and returns finite outputs', async () => {
    const f = fixture('nnmha-seqfirst-padmask-op13');
    const r = await client.run({ model: f.model, settings: { ep: 'cpu' }, inputs: { synthesis: { batch: 3, seq: 5 } }, returnInputs: true });
    expect(r.fed.shapes.input_ids.dims).toEqual([5, 3]);
    expect(r.fed.shapes.padding_mask).toEqual({ dtype: 'bool', dims: [3, 5] });
    expect(Array.from(r.inputs!.padding_mask.data as Uint8Array).every((v) => v === 0)).toBe(true);
    expect(r.fed.shape).toMatchObject({ batch: 3, seq: 5 });
    expect(r.fed.warnings).toEqual([]);
    for (const [name, t] of Object.entries(r.outputs)) {
      expect(t.dims.slice(0, 2), `output ${name} is [sequence, batch, ...]`).toEqual([5, 3]);
      expect(toFloat64(t).every(Number.isFinite), `output ${name} is finite`).toBe(true);
    }
  });
});
