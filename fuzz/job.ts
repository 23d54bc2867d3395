// One mutant from start to end, wherever it runs (a pool worker, or in-process when a seed is replayed): make it,
// write it to its own temporary folder, exercise it, remove the folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RuleRequest } from '../src/rewriters/pipeline';
import { exercise, type MutantResult } from './exercise';
import { makeMutant, type Mutant } from './mutate';
import { Rng } from './rng';

export interface Job {
  /** Fixture name (for reports) and its model file. */
  fixture: string;
  model: string;
  seed: number;
  /** Parent of the mutant's folder (under os.tmpdir()). */
  tmpRoot: string;
  rewrite: boolean;
  cliFile?: string;
}

/** Rule requests the rewrite stage draws from: single rules of each family and two chains. */
export const RULE_CHAINS: RuleRequest[][] = [
  [{ rule: 'window', params: { window: 4 } }],
  [{ rule: 'window', params: { window: 8, impl: 'blocked' } }],
  [{ rule: 'block-topk', params: { block: 4, k: 2 } }],
  [{ rule: 'expand', params: {} }],
  [{ rule: 'prune-heads', params: { heads: { 0: [0] } } }],
  [{ rule: 'gqa', params: { groups: 2 } }],
  [{ rule: 'share-kv', params: { pairs: [[0, 1]] } }],
  [{ rule: 'drop-attention', params: { sites: [0] } }],
  [{ rule: 'share-attn', params: { pairs: [[0, 1]] } }],
  [{ rule: 'dictionary', params: { atoms: 2 } }],
  [{ rule: 'neighborhood2d', params: { radius: 1 } }],
  [{ rule: 'block-topk', params: { block: 4, k: 1, impl: 'gather' } }],
  [{ rule: 'strided', params: { stride: 2, window: 8 } }],
  [{ rule: 'expand', params: {} }, { rule: 'window', params: { window: 4 } }],
  [{ rule: 'prune-heads', params: { heads: { 0: [1] } } }, { rule: 'sink', params: { sink: 2, window: 8 } }],
  [{ rule: 'gqa', params: { groups: 2 } }, { rule: 'power', params: { window: 8 } }],
];

/** The folder a job's mutant lives in: known in advance, so the pool can remove it after killing a hung worker. */
export function jobDir(job: Job): string {
  return path.join(job.tmpRoot, `${job.fixture}-${job.seed}`);
}

const cache = new Map<string, Uint8Array>();

function fixtureBytes(model: string): Uint8Array {
  let b = cache.get(model);
  if (!b) {
    if (cache.size >= 8) cache.clear();
    cache.set(model, (b = new Uint8Array(fs.readFileSync(model))));
  }
  return b;
}

export function runJob(job: Job): MutantResult {
  const start = Date.now();
  const base = { fixture: job.fixture, seed: job.seed };
  let mutant: Mutant;
  try {
    mutant = makeMutant(fixtureBytes(job.model), job.seed);
  } catch (e) {
    const err = e as Error;
    return { ...base, outcome: 'harness-error', mutations: [], failure: { stage: 'mutate', reason: err.name, message: err.message, stack: err.stack }, ms: Date.now() - start };
  }
  const dir = jobDir(job);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  try {
    const pick = new Rng(job.seed ^ 0x5bd1e995);
    const rules = job.rewrite ? pick.pick(RULE_CHAINS) : undefined;
    const externalData = pick.pick(['auto', 'embed', 'external'] as const);
    const r = exercise(mutant, { dir, rules, externalData, cliFile: job.cliFile });
    return { ...base, mutations: mutant.mutations, ...r, ms: Date.now() - start };
  } catch (e) {
    // exercise() catches what the product throws; anything else is the harness's own failure (writing files).
    const err = e as Error;
    return { ...base, outcome: 'harness-error', mutations: mutant.mutations, failure: { stage: 'harness', reason: err.name, message: err.message, stack: err.stack }, ms: Date.now() - start };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
