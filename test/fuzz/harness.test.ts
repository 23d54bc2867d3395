// The fuzz harness itself: mutants are reproducible from their seed and cover both kinds of mutation; the judge tells
// user errors from internal ones; the pool turns a hang, a runaway allocation and a crash into findings.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exercise } from '../../fuzz/exercise';
import { jobDir, type Job } from '../../fuzz/job';
import { judgeError } from '../../fuzz/judge';
import { makeMutant } from '../../fuzz/mutate';
import { runJobs } from '../../fuzz/pool';
import { ModelError } from '../../src/analysis/onnx/errors';
import { RuleError } from '../../src/rewriters/rule';
import { fixture } from '../helpers/fixtures';

let dir: string;
beforeEach(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'al-fuzz-harness-')); });
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const original = new Uint8Array(fs.readFileSync(fixture('fused-gqa').model));

describe('mutants', () => {
  it('are a pure function of the fixture and the seed', () => {
    for (const seed of [0, 1, 77, 123456]) {
      const a = makeMutant(original, seed);
      const b = makeMutant(original, seed);
      expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
      expect(a.mutations).toEqual(b.mutations);
      expect([...a.extra.keys()]).toEqual([...b.extra.keys()]);
    }
    expect(Buffer.from(makeMutant(original, 5).bytes).equals(Buffer.from(makeMutant(original, 6).bytes))).toBe(false);
  });

  it('cover byte-level and structure-aware mutations, and never touch the original', () => {
    const copy = original.slice();
    const seen = new Set<string>();
    let changed = 0;
    for (let seed = 0; seed < 400; seed++) {
      const m = makeMutant(original, seed);
      if (!Buffer.from(m.bytes).equals(Buffer.from(original))) changed++;
      for (const what of m.mutations) seen.add(what);
    }
    expect(changed).toBeGreaterThan(390);
    const all = [...seen].join('\n');
    for (const kind of [
      /flip \d bit/, /truncate to/, /insert \d+ random/, /delete \d+ byte/, /splice/, /varint bomb/,
      /drop graph input/, /reads its own output|a cycle/, /retyped to/, /set to an odd value/, /dims of tensor/, /element type of tensor/,
      /declared type of/, /opset imports edited/, /IR version/, /moved to external data/, /nested \d+ deep/, /chained in front/,
      /If node with branches/, /recursive model-local function/, /declared twice/,
    ]) {
      expect(all, String(kind)).toMatch(kind);
    }
    expect(Buffer.from(original).equals(Buffer.from(copy))).toBe(true);
  });
});

describe('the judge', () => {
  const file = () => path.join(dir, 'model.onnx');
  it('accepts one-line ModelErrors about the model and RuleErrors that name their rule', () => {
    expect(judgeError(new ModelError('truncated', file(), 'file is truncated'), dir)).toEqual({ user: 'ModelError:truncated' });
    expect(judgeError(new RuleError('window', 'the window must be a positive integer'), dir)).toEqual({ user: 'RuleError' });
  });

  it('calls anything else internal', () => {
    const internal = (e: unknown) => 'internal' in judgeError(e, dir);
    expect(internal(new TypeError("Cannot read properties of undefined (reading 'shape')"))).toBe(true);
    expect(internal(new RangeError('Maximum call stack size exceeded'))).toBe(true);
    expect(internal(new Error('rule broke the graph'))).toBe(true);
    expect(internal('a string')).toBe(true);
    expect(internal(Object.assign(new Error('line one\n    at somewhere'), { userError: true }))).toBe(true);
    expect(internal(new ModelError('not-onnx', '/elsewhere/model.onnx', 'not an ONNX model'))).toBe(true);
    expect(internal(new ModelError('not-onnx', file(), 'not an ONNX model: Maximum call stack size exceeded'))).toBe(true);
    expect(internal(new ModelError('not-onnx', file(), 'x'))).toBe(true);
    // A value quoted from the file is the file's business, not a leaked JavaScript error.
    expect(internal(new ModelError('external-range', file(), "tensor 'w' has an invalid external data length 'NaN'"))).toBe(false);
  });
});

describe('exercising a mutant', () => {
  it('the unmutated fixture analyses, rewrites, saves and loads again', () => {
    const r = exercise({ bytes: original, extra: new Map(), mutations: [] }, { dir, rules: [{ rule: 'window', params: { window: 4 } }] });
    expect(r).toEqual({ outcome: 'success', analyze: 'ok', rewrite: 'ok' });
  });

  it('half a fixture is a user error', () => {
    const r = exercise({ bytes: original.subarray(0, original.length >> 1), extra: new Map(), mutations: [] }, { dir, rules: [] });
    expect(r).toEqual({ outcome: 'user-error', analyze: 'ModelError:truncated' });
  });
});

describe('the pool', () => {
  it('reports a hang, a runaway allocation and a crashed worker, and goes on with the other jobs', async () => {
    const worker = path.join(dir, 'fake-worker.js');
    fs.writeFileSync(worker, `
      const fs = require('node:fs');
      const path = require('node:path');
      process.on('message', (job) => {
        fs.mkdirSync(path.join(job.tmpRoot, job.fixture + '-' + job.seed), { recursive: true });
        if (job.seed === 1) for (;;) {}
        if (job.seed === 2) { const keep = []; for (;;) keep.push(Buffer.alloc(1 << 20, 1)); }
        if (job.seed === 3) process.exit(3);
        fs.rmSync(path.join(job.tmpRoot, job.fixture + '-' + job.seed), { recursive: true });
        process.send({ fixture: job.fixture, seed: job.seed, outcome: 'success', mutations: [], ms: 0 });
      });`);
    const tmpRoot = path.join(dir, 'jobs');
    const jobs: Job[] = [0, 1, 2, 3, 4].map((seed) => ({ fixture: 'f', model: '', seed, tmpRoot, rewrite: false }));
    // The time limit leaves the runaway allocation room to reach the memory limit on a loaded machine (with 3 s it was
    // once still allocating when the limit ran out, and reported as a hang, in a full run).
    const results = await runJobs(jobs, { workerFile: worker, concurrency: 2, timeoutMs: 10_000, heapMb: 256, rssLimitMb: 400 });
    const bySeed = Object.fromEntries(results.map((r) => [r.seed, r]));
    expect(results).toHaveLength(5);
    expect(bySeed[0].outcome).toBe('success');
    expect(bySeed[4].outcome).toBe('success');
    expect(bySeed[1].outcome).toBe('hang');
    expect(bySeed[2].outcome).toBe('memory');
    expect(bySeed[3].outcome).toBe('internal');
    expect(bySeed[3].failure?.reason).toMatch(/died \(3\)/);
    // The folders of the jobs whose worker was killed are removed by the pool.
    for (const job of jobs) expect(fs.existsSync(jobDir(job))).toBe(false);
  }, 60_000);
});
