// One progress fraction for a benchmark, from the worker's real progress events.
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchProgress, describeProgress, writeFraction } from '../../src/extension/progress';
import { RuntimeClient } from '../../src/runtime/client';
import type { ProgressEvent } from '../../src/runtime/protocol';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'examples', 'demo-llama.onnx');

describe('benchmark progress', () => {
  it('only moves forward over a real two-model sweep and ends complete', async () => {
    const events: ProgressEvent[] = [];
    const client = new RuntimeClient({ workerPath: path.join(ROOT, 'dist', 'worker.js') });
    try {
      await client.bench(
        { models: [{ path: MODEL }, { path: MODEL }], points: [{ seq: 8, past: 0 }, { seq: 16, past: 0 }], warmup: 1, iters: 2, profileRuns: 1 },
        { onProgress: (p) => events.push(p) },
      );
    } finally {
      await client.dispose();
    }
    expect(new Set(events.map((e) => e.phase))).toEqual(new Set(['session', 'warmup', 'timed', 'profile']));
    const tracker = new BenchProgress(2);
    const fractions = events.map((e) => tracker.fraction(e));
    for (let i = 1; i < fractions.length; i++) expect(fractions[i]).toBeGreaterThanOrEqual(fractions[i - 1]);
    expect(fractions[0]).toBeGreaterThanOrEqual(0);
    expect(fractions.at(-1)).toBeCloseTo(1, 6);
  });

  it('describes a step in words', () => {
    expect(describeProgress({ phase: 'timed', done: 7, total: 10, message: 'seq 128 (2/4)' })).toBe('timed runs, seq 128 (2/4): 7/10');
    expect(describeProgress({ phase: 'session', done: 0, total: 2, message: '/x/model.onnx' })).toBe('loading models: 0/2');
  });
});

describe('export progress', () => {
  it('places loading, the sites of each rule and the saved bytes within the given span, in that order', () => {
    const at = (phase: 'load' | 'analyse' | 'rewrite' | 'save', done: number, total: number) => writeFraction({ phase, done, total, message: '' }, 0.1, 0.9);
    const steps = [at('load', 0, 0), at('analyse', 0, 0), at('rewrite', 0, 4), at('rewrite', 2, 4), at('rewrite', 4, 4), at('save', 0, 100), at('save', 50, 100), at('save', 100, 100)];
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThan(steps[i - 1]);
    expect(steps[0]).toBeCloseTo(0.1, 12);
    expect(steps.at(-1)).toBeCloseTo(0.9, 12);
  });
});
