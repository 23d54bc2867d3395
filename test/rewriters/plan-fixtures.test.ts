// A mixed plan on every shared fixture it applies to: the rewritten model runs on inputs from the runtime's synthesis
// (13 new tokens, 5 cached ones where the model has a KV cache), gives finite outputs, changes them, the
// input file is left as it was, and the
// compute-reducing form gives the mask form's outputs; both are analysed back as the original's sites with their plans. Each self-attention site with a known head count gets a plan
// cycling through the choices its kind allows (causal patterns only on causal sites, block-topk only where the site is
// written out or can be); cross-attention sites keep dense heads and lose one.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import type { SiteInfo } from '../../src/analysis/report/types';
import { expandSkipReason } from '../../src/rewriters/expand/expand-rule';
import { pruneHeads } from '../../src/rewriters/prune/prune-heads';
import { formReason } from '../../src/rewriters/sparse/params';
import { fixture, fixtureNames } from '../helpers/fixtures';
import { floatOutputs, maxAbsDiff, rewriteTo, synthesizedFeeds, tempDir } from './sparse-helpers';
import { expectedReadBack, fullScoreGroups, planRequest, readBack } from './plan-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('plan-fixtures'); });
afterAll(() => tmp.cleanup());

function choicesFor(site: SiteInfo, report: ReturnType<typeof analyzeModel>): string[] | null {
  if (!site.heads || site.heads < 2) return null;
  const prunable = pruneHeads.skipReason(site, { heads: { [site.id]: [site.heads - 1] } }, report) === null;
  if (site.kind === 'cross' || formReason(site)) return prunable ? [...Array(site.heads - 1).fill('dense'), 'pruned'] : null;
  const topk = !site.anchors.fused || expandSkipReason(site) === null;
  const cycle = [
    'window 3', 'dense', ...(site.causal ? ['sink 2 + window 2', 'strided 3 + window 2', 'power + window 2'] : ['window 6']), ...(topk ? ['block-topk 4,1'] : []),
  ];
  // Started at the site's id, so that sites of few heads still meet every choice between them.
  const out = Array.from({ length: site.heads }, (_, h) => cycle[(h + site.id) % cycle.length]);
  if (prunable && site.heads > 2) out[site.heads - 1] = 'pruned';
  return out;
}

const sha = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe.each(fixtureNames())('%s', (name) => {
  it('a mixed plan runs, changes the outputs, and its blocked form matches its mask form', async () => {
    const model = fixture(name).model;
    const hashBefore = sha(model);
    const report = analyzeModel(model);
    const sites: Record<number, string[]> = {};
    for (const s of report.sites) {
      const c = choicesFor(s, report);
      if (c) sites[s.id] = c;
    }
    if (Object.keys(sites).length === 0) return;
    const feeds = synthesizedFeeds(model, 13, 5);
    const original = await floatOutputs(model, feeds);
    const mask = rewriteTo(model, [planRequest(sites, 'mask')], tmp.dir, `${name}-mask`);
    const blocked = rewriteTo(model, [planRequest(sites, 'blocked')], tmp.dir, `${name}-blocked`);
    // Pruning a head of a model with a KV cache also removes its cached keys and values: the cache inputs are
    // synthesized for the rewritten model's shapes (the same seed, so the new tokens are the original's).
    const planFeeds = synthesizedFeeds(mask.file, 13, 5);
    const m = await floatOutputs(mask.file, planFeeds);
    const b = await floatOutputs(blocked.file, planFeeds);
    expect(Object.keys(m).sort()).toEqual(Object.keys(original).sort());
    for (const o of Object.keys(original)) {
      expect(b[o]?.length, `output ${o}`).toBe(m[o].length);
      expect(m[o].every(Number.isFinite), `output ${o} finite`).toBe(true);
      expect(maxAbsDiff(b[o], m[o]), `blocked vs mask: ${o}`).toBeLessThan(1e-4);
    }
    // Outputs that keep their size (a pruned model's cache outputs do not) show the plan's effect.
    const comparable = Object.keys(original).filter((o) => m[o].length === original[o].length);
    expect(comparable.some((o) => maxAbsDiff(m[o], original[o]) > 1e-4), 'the plan changed the outputs').toBe(true);
    expect(sha(model)).toBe(hashBefore);
    // Every site with sparse heads was split, and each of its sparse groups (window, sink, strided, power, block-topk)
    // took its compute-reducing form: only a dense group's Softmax reads a full [B, Hg, S, S] score tensor.
    const sparse = blocked.report.applied[0].changes.filter((c) => (c.after.heads as string[]).some((h) => h !== 'dense' && h !== 'pruned'));
    for (const c of sparse) {
      expect(c.after.impl, `site ${c.site}`).toBe('blocked');
      expect(String(c.after.groups), `site ${c.site}`).not.toMatch(/\(mask\)/);
    }
    for (const g of fullScoreGroups(report, blocked.model, sparse)) expect(g.full, `site ${g.site}: Softmaxes over full score rows`).toBe(g.allowed);
    // Analysed again, each planned model has the original's sites (each split site once), their kept heads and plans,
    // and nothing unmatched that the original did not have.
    for (const [file, split] of [[mask.file, false], [blocked.file, true]] as const) {
      const again = analyzeModel(file);
      expect(again.unmatched, file).toEqual(report.unmatched);
      expect(readBack(again), file).toEqual(expectedReadBack(report, sites, split));
    }
  });
});
