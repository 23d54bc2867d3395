// Input layouts and mask meanings read from the graph, not from names: which axis of the token ids is the sequence
// (by dim name, by data path when the dims are fixed, by a name shared with another input), and whether a padding
// mask's true means attend or padding (from how the graph uses it), with a warning where the graph does not say.
import { describe, expect, it } from 'vitest';
import { analyzeLoaded, analyzeModel } from '../../src/analysis/analyze';
import { reshapeAxis } from '../../src/analysis/layout/axis-flow';
import { maskMeaning } from '../../src/analysis/layout/mask-meaning';
import { attr, GraphBuilder } from '../../src/analysis/ir/builder';
import { ShapeInfo } from '../../src/analysis/ir/shapes';
import { FIXTURES, fixture } from '../helpers/fixtures';
import * as path from 'node:path';
import { type MaskForm, type MhaOptions, buildTorchMha } from './torch-mha-variants';

const inputs = (o: MhaOptions) => {
  const r = analyzeLoaded(buildTorchMha(o));
  expect(r.sites, 'the attention is detected').toHaveLength(1);
  return { ids: r.model.inputs.find((i) => i.name === 'ids')!, mask: r.model.inputs.find((i) => i.name === 'key_padding_mask'), warnings: r.warnings };
};

describe('which input axis is the sequence', () => {
  it.each([
    ['seq-first', 'symbolic', { sequence: 0, batch: 1 }],
    ['batch-first', 'symbolic', { batch: 0, sequence: 1 }],
    // Fixed sizes carry no names: the axis is followed op by op to the scores' key axis.
    ['seq-first', 'fixed', { sequence: 0, batch: 1 }],
    ['batch-first', 'fixed', { batch: 0, sequence: 1 }],
  ] as const)('%s ids with %s dims', (layout, dims, axes) => {
    const r = inputs({ layout, dims });
    expect(r.ids.axes).toEqual(axes);
    expect(r.warnings).toEqual([]);
  });

  it('places a mask over other keys by the batch name it shares with the ids', () => {
    const r = inputs({ layout: 'seq-first', dims: 'symbolic', mask: 'bool-pad', maskDims: ['B', 'total'] });
    expect(r.ids.axes).toEqual({ sequence: 0, batch: 1 });
    expect(r.mask?.axes).toEqual({ batch: 0, sequence: 1 });
    expect(r.warnings).toEqual([]);
  });

  it('says so when no axis of an input can be traced to the attention', () => {
    // A mask with names of its own, used only for pooling: nothing ties its axes to the scores or to the ids.
    const r = analyzeLoaded(buildTorchMha({ layout: 'batch-first', dims: 'symbolic', mask: 'bool-unused', maskDims: ['n', 'm'] }));
    expect(r.model.inputs[1].axes).toBeUndefined();
    expect(r.warnings.join('\n')).toMatch(/input key_padding_mask: no axis of it could be traced .* assume \[batch, sequence\]/);
    // The same mask with the ids' names is placed by them.
    const named = analyzeLoaded(buildTorchMha({ layout: 'batch-first', dims: 'symbolic', mask: 'bool-unused' }));
    expect(named.model.inputs[1].axes).toEqual({ batch: 0, sequence: 1 });
  });

  it('keeps an axis through a Reshape only when the dims before it are provably unchanged', () => {
    expect(reshapeAxis(['S', 'B', 128], ['S', null, 32], 0)).toEqual([0]);
    expect(reshapeAxis([6, 2, 8], [6, 4, 4], 0)).toEqual([0]);
    expect(reshapeAxis([6, 2, 8], [6, 4, 4], 1)).toEqual([]);
    expect(reshapeAxis([2, 6, 8], [12, 8], 1)).toEqual([]);
    expect(reshapeAxis(['B', 'S', 8], ['B', 'S', 2, 4], 1)).toEqual([1]);
    expect(reshapeAxis([null, 'S', 8], [null, 'S', 2, 4], 1)).toEqual([]);
  });
});

describe('what a mask means', () => {
  it.each([
    ['bool-pad', 'pad'],
    ['bool-keep', 'keep'],
    ['bool-not', 'keep'],
    ['int-keep', 'keep'],
    ['int-pad', 'pad'],
  ] as [MaskForm, string][])('%s', (mask, meaning) => {
    const r = inputs({ layout: 'seq-first', dims: 'symbolic', mask });
    expect(r.mask?.role).toBe('attention_mask');
    expect(r.mask?.maskMeaning).toBe(meaning);
    expect(r.warnings).toEqual([]);
  });

  it('warns instead of guessing when the graph does not say', () => {
    const r = analyzeLoaded(buildTorchMha({ layout: 'seq-first', dims: 'symbolic', mask: 'bool-unused' }));
    const mask = r.model.inputs.find((i) => i.name === 'key_padding_mask')!;
    expect(mask.maskMeaning).toBeUndefined();
    expect(r.warnings.join('\n')).toMatch(/input key_padding_mask: cannot tell whether true means attend or padding \(no use of it/);
  });
});

describe('shared fixtures', () => {
  it('reads the sequence-first ids and the padding meaning of torch.nn.TransformerEncoder', () => {
    const r = analyzeModel(fixture('nnmha-seqfirst-padmask-op13').model);
    const [ids, mask] = r.model.inputs;
    expect(ids).toMatchObject({ name: 'input_ids', shape: ['sequence', 'batch'], axes: { sequence: 0, batch: 1 } });
    expect(mask).toMatchObject({ name: 'padding_mask', dtype: 'bool', axes: { batch: 0, sequence: 1 }, maskMeaning: 'pad' });
  });

  it.each(['gpt2-past-sdpa-ts-op17', 'bert-sdpa-dynamo-op23', 'llama-eager-ts-op17', 'bart-eager-ts-op17'])(
    '%s: batch-first ids, masks whose 1 means attend',
    (name) => {
      const r = analyzeModel(path.join(FIXTURES, name, 'model.onnx'));
      for (const i of r.model.inputs.filter((x) => x.role === 'input_ids')) expect(i.axes).toEqual({ batch: 0, sequence: 1 });
      const mask = r.model.inputs.find((i) => i.role === 'attention_mask')!;
      expect(mask).toMatchObject({ axes: { batch: 0, sequence: 1 }, maskMeaning: 'keep' });
    },
  );
});

describe('a padding mask multiplied by another 0/1 mask first', () => {
  /** T5's decoder: causal · mask, then (1 − ·) · min, added to the scores. `other` replaces the causal factor. */
  function meaningThrough(other: 'causal' | 'float input'): string | undefined {
    const b = GraphBuilder.create();
    const mask = b.input('attention_mask', 'int64', ['batch', 4]);
    const rows = b.initializer('rows', [4, 1], { dtype: 'int64', data: [0, 1, 2, 3] });
    const cols = b.initializer('cols', [1, 4], { dtype: 'int64', data: [0, 1, 2, 3] });
    const factor = other === 'causal'
      ? b.op('Cast', [b.op('LessOrEqual', [cols, rows])], { attrs: { to: attr.int(1) } })
      : b.input('weights', 'float32', [4, 4]);
    const m = b.op('Cast', [b.op('Unsqueeze', [mask, b.initializer('ax', [2], { dtype: 'int64', data: [1, 2] })])], { attrs: { to: attr.int(1) } });
    const both = b.op('Mul', [factor, m]);
    const one = b.initializer('one', [], { dtype: 'float32', data: [1] });
    const min = b.initializer('min', [], { dtype: 'float32', data: [-3.4e38] });
    b.output(b.op('Mul', [b.op('Sub', [one, both]), min]), 'float32');
    return maskMeaning(mask, false, new ShapeInfo(b.graph)).meaning;
  }

  it('reads as attend where it is 1, through the product with the causal mask', () => {
    expect(meaningThrough('causal')).toBe('keep');
  });

  it('says nothing through a product with a tensor that is not 0/1', () => {
    expect(meaningThrough('float input')).toBeUndefined();
  });
});
