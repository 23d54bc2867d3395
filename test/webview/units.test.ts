// How the dashboard speaks of a model's length: tokens for text, patches and images for an image model.
import { describe, expect, it } from 'vitest';
import type { RewritePreview, SessionSnapshot, SpeedPoint } from '../../src/protocol';
import { totalsRows } from '../../webview/logic/preview';
import { nextRunText } from '../../webview/logic/speed';
import { lengthTitle, positions, throughput, throughputTitle, unitsOf } from '../../webview/logic/units';

const text = unitsOf({ model: { inputs: [{ name: 'input_ids', dtype: 'int64', shape: ['batch', 'sequence'], role: 'input_ids' }] } as never });
const image = unitsOf({ model: { inputs: [{ name: 'pixel_values', dtype: 'float32', shape: ['batch', 3, 32, 32], role: 'pixel_values' }] } as never });

function point(seq: number, meanMs: number): SpeedPoint {
  return {
    model: 'original', seq, latencyMs: { p50: meanMs, p90: meanMs, mean: meanMs, std: 0, runs: 5, ci95: [meanMs, meanMs], outliers: 0 },
    // As the runtime computes it: batch × seq positions per run over the mean latency.
    tokensPerSecond: seq / (meanMs / 1000), attentionShare: null, attentionCoreShare: null,
    vsOriginal: { ratio: 1, ci95: [1, 1], significant: false, paired: true }, vsBaseline: { ratio: 1, ci95: [1, 1], significant: false, paired: true }, warnings: [],
  };
}

describe('units of length', () => {
  it('text models count tokens; image models patches', () => {
    expect([text, image]).toEqual([{ vision: false, unit: 'tokens' }, { vision: true, unit: 'patches' }]);
    expect(unitsOf(null)).toEqual({ vision: false, unit: 'tokens' });
    expect([positions(512, text), positions(1, text), positions(17, image)]).toEqual(['512 tokens', '1 token', '17 patches']);
    expect([lengthTitle(text), lengthTitle(image)]).toEqual(['sequence length (tokens)', 'patches']);
  });

  it('throughput: tokens/s for text; images/s for an image model (17 patches in 2 ms: 500 images/s, not 8500 tokens/s)', () => {
    expect([throughputTitle(text), throughputTitle(image)]).toEqual(['tokens/s', 'images/s']);
    expect(throughput(point(17, 2), image)).toBe('500');
    expect(throughput(point(512, 2), text)).toBe('256000');
    expect(throughput(null, image)).toBe('–');
  });

  it("a preview's cost rows name the unit", () => {
    const p = { seqLen: 17, nodesBefore: 1, nodesAfter: 1, parametersBefore: 1, parametersAfter: 1, flopsBefore: 4, flopsAfter: 2, bytesBefore: 4, bytesAfter: 2 } as RewritePreview;
    expect(totalsRows(p, image).map((r) => r[0])).toEqual(['nodes', 'parameters', 'attention FLOPs at 17 patches', 'attention matrices at 17 patches']);
  });

  it("the Speed header states the next run's plan, in the model's terms", () => {
    const session = {
      variants: [],
      settings: { executionProviders: ['cpu'], sequenceLengths: [64, 512], iterations: 10, minTimeMs: 1000, warmup: 2, mapsSequenceLength: 64, calibrationInputs: null, outputFolder: null },
    } as unknown as SessionSnapshot;
    expect(nextRunText(session, text)).toBe('Times the original and 0 variant(s) at 64, 512 tokens: at least 10 timed runs and 1 s per length after 2 warm-up, on cpu.');
    expect(nextRunText(session, image)).toBe('Times the original and 0 variant(s) at the model’s own image size: at least 10 timed runs and 1 s after 2 warm-up, on cpu.');
    // With no exact variant the run adds the fused original as the dense baseline, and says so; a fused variant is one.
    const rules = [{ name: 'window', family: 'sparse', summary: '' }, { name: 'fuse', family: 'structure', summary: '' }];
    const variant = (rule: string) => ({ id: rule, label: rule, steps: [], preview: { applied: [{ rule, changes: [] }] } });
    const sparseOnly = { ...session, rules, variants: [variant('window')] } as unknown as SessionSnapshot;
    expect(nextRunText(sparseOnly, text)).toMatch(/on cpu\. No variant computes exactly what the original does, so the original fused for the provider is timed too, as the dense baseline/);
    const withFused = { ...session, rules, variants: [variant('window'), variant('fuse')] } as unknown as SessionSnapshot;
    expect(nextRunText(withFused, text)).toMatch(/on cpu\.$/);
  });
});
