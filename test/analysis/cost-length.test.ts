// The length of the analytic cost figures: the model's own where every site's queries and keys are fixed to one (a
// ViT exported for 32×32 images attends over 17 patches, always), else 1024; an explicit length wins.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_COST_LENGTH, analyzeModel } from '../../src/analysis/analyze';
import { rewriteInMemory } from '../../src/rewriters/pipeline';
import { FIXTURES } from '../helpers/fixtures';

const model = (name: string) => path.join(FIXTURES, name, 'model.onnx');

describe('cost length', () => {
  it("an image model's cost is at its own patch count", () => {
    const r = analyzeModel(model('vit-eager-ts-op17'));
    expect(r.costSeqLen).toBe(17);
    // Q·Kᵀ and P·V: 2 · heads · 17² · (head size + value head size) FLOPs.
    for (const s of r.sites) expect(s.flops).toBe(2 * s.heads! * 17 * 17 * (s.headDim! + s.headDim!));
  });

  it('a model of free length is costed at the default; an explicit length always wins', () => {
    expect(analyzeModel(model('llama-eager-ts-op17')).costSeqLen).toBe(DEFAULT_COST_LENGTH);
    expect(analyzeModel(model('vit-eager-ts-op17'), { seqLen: 256 }).costSeqLen).toBe(256);
  });

  it("a rewrite's report uses the same length and names its unit", () => {
    const vit = rewriteInMemory(model('vit-eager-ts-op17'), [{ rule: 'window', params: { window: 4 } }]).report;
    expect([vit.seqLen, vit.seqUnit]).toEqual([17, 'patches']);
    const llama = rewriteInMemory(model('llama-eager-ts-op17'), [{ rule: 'window', params: { window: 4 } }]).report;
    expect([llama.seqLen, llama.seqUnit]).toEqual([1024, 'tokens']);
  });
});
