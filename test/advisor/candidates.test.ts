// The advisor's candidates and their densities (src/orchestrate/advisor/candidates.ts), and the calibration windows
// kept apart from the evaluation windows (calibration.ts).
import { describe, expect, it } from 'vitest';
import { CalibrationError, splitTokens } from '../../src/orchestrate/advisor/calibration';
import { candidateSet, choiceKeys, denseKeys } from '../../src/orchestrate/advisor/candidates';
import { describeHeadChoice } from '../../src/rewriters/plan/choices';
import { visible } from '../../src/rewriters/sparse/pattern';

describe('densities', () => {
  it('counts a causal window as the keys its queries see: window 64 at 512 is 23.4% of causal dense attention', () => {
    expect(denseKeys(true, 512)).toBe(256.5);
    const w64 = choiceKeys({ kind: 'window', window: 64 }, true, 512, 0, 8);
    expect(w64).toBeCloseTo((64 * 65) / 2 / 512 + ((512 - 64) * 64) / 512, 12);
    expect(w64 / denseKeys(true, 512)).toBeCloseTo(0.23416, 5);
  });

  it('counts a strided head by its own shard, as the visibility predicate does', () => {
    for (const h of [0, 3, 7]) {
      let cells = 0;
      for (let i = 0; i < 100; i++) for (let j = 0; j < 100; j++) if (visible({ kind: 'strided', stride: 8, window: 10 }, i, j, h)) cells++;
      expect(choiceKeys({ kind: 'strided', stride: 8, window: 10 }, true, 100, h, 8)).toBeCloseTo(cells / 100, 12);
    }
  });

  it('bounds block-topk by the diagonal block (its causal part) and k + 1 other blocks', () => {
    // 8 tokens, blocks of 2, k = 0: the diagonal block and block 0. Keys per query: 1 2 | 3 4 | 3 4 | 3 4.
    expect(choiceKeys({ kind: 'block-topk', block: 2, k: 0 }, true, 8, 0, 1)).toBe(24 / 8);
    // Every block kept: dense attention, causal or not (a last block of 2 of 10 tokens in blocks of 4).
    expect(choiceKeys({ kind: 'block-topk', block: 4, k: 9 }, true, 10, 0, 1)).toBeCloseTo(denseKeys(true, 10), 12);
    expect(choiceKeys({ kind: 'block-topk', block: 4, k: 9 }, false, 10, 0, 1)).toBeCloseTo(10, 12);
    // Not causal, 10 tokens in blocks of 4 (4, 4, 2), k = 0: the own block and the largest other.
    expect(choiceKeys({ kind: 'block-topk', block: 4, k: 0 }, false, 10, 0, 1)).toBeCloseTo((8 * 8 + 2 * 6) / 10, 12);
  });

  it('prices dense and pruned heads at dense and nothing', () => {
    expect(choiceKeys({ kind: 'dense' }, false, 65, 0, 4)).toBe(65);
    expect(choiceKeys({ kind: 'pruned' }, true, 512, 0, 8)).toBe(0);
  });
});

describe('candidateSet', () => {
  it('offers the causal patterns only on causal sites, dense first and pruned last', () => {
    const causal = candidateSet(512, true).choices.map(describeHeadChoice);
    expect(causal[0]).toBe('dense');
    expect(causal[causal.length - 1]).toBe('pruned');
    expect(causal).toContain('window 64');
    expect(causal).toContain('sink 4 + window 64');
    expect(causal).toContain('strided 32 + window 64');
    expect(causal).toContain('block-topk 32,4');
    const bidirectional = candidateSet(65, false).choices.map(describeHeadChoice);
    expect(bidirectional.some((c) => c.startsWith('sink') || c.startsWith('strided'))).toBe(false);
    expect(candidateSet(65, false).families.map((f) => f.name)).toEqual(['window', 'block-topk 16,k']);
  });
});

describe('splitTokens', () => {
  const tokens = new Int32Array(262144);

  it("places calibration windows where no evaluation window reads, spread over the file", () => {
    const s = splitTokens(tokens, 512, 64, 8);
    expect(s.evalStarts).toHaveLength(64);
    expect(s.evalStarts[1]).toBe(Math.floor((262144 - 513) / 64));
    expect(s.calibrationStarts).toHaveLength(8);
    for (const c of s.calibrationStarts) {
      expect(c).toBeGreaterThanOrEqual(0);
      expect(c + 513).toBeLessThanOrEqual(tokens.length);
      for (const e of s.evalStarts) expect(c + 513 <= e || e + 513 <= c).toBe(true);
    }
    expect(new Set(s.calibrationStarts).size).toBe(8);
    expect(s.calibrationStarts[7] - s.calibrationStarts[0]).toBeGreaterThan(tokens.length / 2);
  });

  it('refuses a file with no room between its evaluation windows, saying what to change', () => {
    expect(() => splitTokens(new Int32Array(64 * 513 + 10), 512, 64, 4)).toThrow(CalibrationError);
    expect(() => splitTokens(new Int32Array(64 * 513 + 10), 512, 64, 4)).toThrow(/room for 0 calibration window\(s\), 4 asked/);
  });
});
