// The view logic of the real-data views: the map's hover values and axis labels, per-head recall, the prune-heads plan
// from head importance, decode past lengths and continuations, and the evaluation table. Pure, no DOM.
import { describe, expect, it } from 'vitest';
import type { AttentionMaps, EvalResults, ImportanceResults } from '../../src/protocol';
import { parsePattern } from '../../src/shared/sparse-pattern';
import { agreedText, continuation, parsePasts } from '../../webview/logic/decode';
import { evalRows, unitOf } from '../../webview/logic/evaluate';
import { axisTicks, cellAt, describeCell, headRecalls, maskedMass } from '../../webview/logic/heatmap';
import { prunePlan, rankHeads } from '../../webview/logic/importance';

/** 2 heads, 3 queries after 1 cached key (4 keys); p = (100·head + 10·query + key) / 1000. */
function maps(): AttentionMaps {
  const probabilities: number[] = [];
  for (let h = 0; h < 2; h++) for (let q = 0; q < 3; q++) for (let k = 0; k < 4; k++) probabilities.push((100 * h + 10 * q + k) / 1000);
  return {
    site: 0, tokens: ['a', 'b', 'c', 'd'], lengthNote: '', causal: true, pattern: 'window 2', dims: [2, 3, 4], probabilities,
    heads: [{ head: 0, entropy: 1, firstTokenMass: 0, meanDistance: 0, diagonalMass: 0, recall: 0.25 }, { head: 1, entropy: 1, firstTokenMass: 0, meanDistance: 0, diagonalMass: 0, recall: 0.5 }],
    maxRowSumError: 0, maxFutureMass: 0, ep: 'cpu', inputs: '', finishedAt: '',
  };
}

describe('maps', () => {
  it('the cell under the pointer: its value and its query and key tokens (queries sit after the cache)', () => {
    const m = maps();
    const c = cellAt(m, 1, 2.5 / 4, 1.5 / 3)!;
    expect(c).toEqual({ query: 1, key: 2, value: 0.112, queryLabel: 'c', keyLabel: 'c' });
    expect(describeCell(c)).toBe('query 1 “c” → key 2 “c”: p = 0.1120');
    expect(cellAt(m, 0, 1.2, 0.5)).toBeNull();
    expect(describeCell({ query: 0, key: 0, value: 1.5e-5, queryLabel: null, keyLabel: null })).toBe('query 0 → key 0: p = 1.50e-5');
  });

  it('axis ticks: every position up to the limit, then every k-th; tokens when known', () => {
    expect(axisTicks(3, ['x', 'y', 'z'])).toEqual([{ index: 0, at: 1 / 6, text: 'x' }, { index: 1, at: 0.5, text: 'y' }, { index: 2, at: 5 / 6, text: 'z' }]);
    const many = axisTicks(512, null, 32);
    expect(many).toHaveLength(32);
    expect(many[1]).toEqual({ index: 16, at: 16.5 / 512, text: '16' });
  });

  it('recall per head: the runtime’s for the measured pattern, from the map for another, none without one', () => {
    const m = maps();
    expect(headRecalls(m, 'window 2')).toEqual([0.25, 0.5]);
    const other = headRecalls(m, 'window 1');
    expect(other[1]).toBeCloseTo(maskedMass(m, 1, parsePattern('window 1')), 12);
    expect(headRecalls(m, null)).toEqual([null, null]);
  });
});

function importance(): ImportanceResults {
  const site = (id: number, changes: number[]) => ({ site: id, heads: changes.map((c, head) => ({ head, outputChange: c, entropy: null, firstTokenMass: null, diagonalMass: null })) });
  return { output: 'logits', metric: 'kl', samples: 1, inputs: '', sites: [site(0, [0.3, 0.01, 0.2, 0.01]), site(2, [0.5, 0.1])], warnings: [], finishedAt: '' };
}

describe('head importance', () => {
  it('ranks heads least important first (ties in head order) and plans prune-heads for one site or all', () => {
    const r = importance();
    expect(rankHeads(r.sites[0])).toEqual([1, 3, 2, 0]);
    expect(prunePlan(r, 2, 0)).toBe('0:1,3');
    expect(prunePlan(r, 2, null)).toBe('0:1,3;2:1');
    // A site keeps at least one head.
    expect(prunePlan(r, 9, null)).toBe('0:1,2,3;2:1');
    expect(() => prunePlan(r, 0, null)).toThrow(/positive integer/);
  });
});

describe('decode and evaluation', () => {
  it('past lengths as typed', () => {
    expect(parsePasts('1024, 64 256,64')).toEqual([64, 256, 1024]);
    expect(parsePasts('64, x')).toMatch(/whole numbers/);
    expect(parsePasts('')).toMatch(/whole numbers/);
  });

  it('continuations as text where the tokens are known', () => {
    expect(continuation([100, 101, 7], { 100: 'd', 101: 'e' })).toBe('de#7');
    expect(continuation([1, 2], null)).toBe('#1 #2');
    expect(agreedText({ agreedSteps: 3, tokensOriginal: [1, 2, 3, 4] } as never)).toBe('3 of 4');
    expect(agreedText({ agreedSteps: 4, tokensOriginal: [1, 2, 3, 4] } as never)).toBe('all 4');
  });

  it('evaluation rows with the change from the original, in bits per byte for byte-level text', () => {
    const e: EvalResults = {
      file: 'a.py', how: 'bytes (a byte-level model)', windows: 2, windowLength: 8, fileTokens: 100, ep: 'cpu', finishedAt: '',
      rows: [{ model: 'original', label: 'original', bitsPerToken: 1.76123, perplexity: 3.39, tokensScored: 16 }, { model: 'v1', label: 'window 8', bitsPerToken: 1.86, perplexity: 3.63, tokensScored: 16 }],
    };
    expect(evalRows(e).map((r) => r.change)).toEqual(['–', '+0.0988']);
    expect(unitOf(e)).toBe('bits per byte');
    expect(unitOf({ how: 'tokenised with tokenizer.json' })).toBe('bits per token');
  });
});
