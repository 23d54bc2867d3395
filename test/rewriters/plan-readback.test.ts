// `analyze` on a planned model (issue 10): a site the blocked plan split into head groups (one Softmax per group) is
// read back as ONE site, with the original's heads, head map and the per-head plan the rule recorded; the mask form's
// sites carry the plan too. What the analysis relies on is documented in src/analysis/attention/plan-site.ts; these
// tests also check what it says when the record is missing or does not match, and that no later rule rewrites a split
// site as a whole.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { PLAN_MARKER } from '../../src/analysis/attention/plan-site';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { renderReport } from '../../src/cli/analyze';
import { rewriteInMemory } from '../../src/rewriters/pipeline';
import { exposeAttentionMaps } from '../../src/runtime/maps-model';
import { scorePath } from '../../src/runtime/sites';
import { fixture } from '../helpers/fixtures';
import { expectedReadBack, planRequest, readBack } from './plan-helpers';
import { rewriteTo, tempDir } from './sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('plan-readback'); });
afterAll(() => tmp.cleanup());

const MODEL = fixture('bytelm-llama-trained').model; // 4 sites of 8 query heads, 4 KV heads
const PLAN: Record<number, string[]> = {
  0: ['window 5', 'sink 2 + window 4', 'dense', 'sink 2 + window 4', 'window 5', 'strided 3 + window 2', 'block-topk 8,1', 'pruned'],
  1: ['power + window 4', 'strided 4 + window 8', 'power + window 4', 'strided 4 + window 8', 'window 16', 'window 16', 'dense', 'dense'],
  3: Array.from({ length: 8 }, () => 'window 9'),
};

describe('analyze reads a blocked plan back as the original sites', () => {
  const original = analyzeModel(MODEL);
  let file: string | undefined;
  const planned = () => ({ file: (file ??= rewriteTo(MODEL, [planRequest(PLAN, 'blocked')], tmp.dir, 'bytelm-blocked').file) });

  it('the same sites, nothing unmatched, each split site once with its kept heads, its plan and its head groups', () => {
    const again = analyzeModel(planned().file);
    expect(original.unmatched).toEqual([]);
    expect(again.unmatched).toEqual([]);
    expect(again.sites.length).toBe(original.sites.length);
    expect(readBack(again)).toEqual(expectedReadBack(original, PLAN, true));
    // Spelled out for site 1 (no pruning): 8 heads in three groups, in order of first appearance.
    expect(again.sites[1].heads).toBe(8);
    expect(again.sites[1].plan?.groups).toEqual([
      { heads: [0, 2], choice: 'power + window 4' },
      { heads: [1, 3], choice: 'strided 4 + window 8' },
      { heads: [4, 5], choice: 'window 16' },
      { heads: [6, 7], choice: 'dense' },
    ]);
    // Site 3 has one choice: it is not split, and is read like a uniform blocked window, with its plan.
    expect(again.sites[3].plan).toEqual({ choices: PLAN[3] });
    // A site the plan does not name is as it was.
    expect(again.sites[2].plan).toBeUndefined();
  });

  it('a split site without pruning binds exactly as the original: the same heads, KV heads and head map', () => {
    const again = analyzeModel(planned().file);
    const [before, after] = [original.sites[1].binding, again.sites[1].binding];
    expect(before).toBeDefined();
    expect(after).toEqual(before);
    expect(again.sites[1].kvHeads).toBe(original.sites[1].kvHeads);
    expect(again.sites[1].projections).toEqual(original.sites[1].projections);
  });

  it("the profiler's score path of a split site holds every group's Softmax, and not the projections", () => {
    const site = analyzeModel(planned().file).sites[1];
    const core = scorePath(site);
    const anchor = site.anchors.softmax!;
    expect(core).toEqual(expect.arrayContaining([anchor, `${anchor}::plan/g1/softmax`, `${anchor}::plan/g2/softmax`, `${anchor}::plan/g3/softmax`]));
    expect(core).not.toContain(site.projections.o!.node);
    expect(core).not.toContain(site.projections.q!.node);
  });

  it('the analysis table lists the planned sites with their choices and groups', () => {
    const text = renderReport(analyzeModel(planned().file));
    expect(text).toContain('3 site(s) with a per-head plan:');
    expect(text).toContain(`site 1: ${PLAN[1].join(', ')}; computed in 4 head groups (heads 0, 2: power + window 4; heads 1, 3: strided 4 + window 8; heads 4, 5: window 16; heads 6, 7: dense)`);
    expect(text).toContain(`site 3: ${PLAN[3].join(', ')}\n`);
  });

  it('without the record, the groups are still one site, with a note that the choices are unknown; a record that does not fit is dropped', () => {
    const model = loadModel(planned().file);
    const anchor = (id: number) => model.graph.nodeByName(original.sites[id].anchors.softmax!)!;
    anchor(0).proto.metadataProps = [];
    anchor(1).proto.metadataProps = [{ key: PLAN_MARKER, value: JSON.stringify({ version: 1, heads: [...PLAN[1]].reverse() }) }];
    anchor(3).proto.metadataProps = [{ key: PLAN_MARKER, value: 'not json' }];
    const file = `${tmp.dir}/edited.onnx`;
    saveModel(model, file);
    const again = analyzeModel(file);
    expect(again.sites.length).toBe(4);
    expect(again.unmatched).toEqual([]);
    expect(again.sites[0].heads).toBe(7);
    expect(again.sites[0].plan?.choices).toBeNull();
    expect(again.sites[0].plan?.groups?.map((g) => g.choice)).toEqual([null, null, null, null, null]);
    expect(again.sites[0].notes.join('\n')).toContain('records no choices');
    expect(again.sites[1].plan?.choices).toBeNull();
    expect(again.sites[1].notes.join('\n')).toContain('does not match its head groups');
    expect(again.sites[3].plan).toEqual({ choices: null });
    expect(again.sites[3].notes.join('\n')).toContain('is not one this version reads');
  });

  it('no later rule rewrites a split site: each refuses it with the reason', () => {
    const file = planned().file;
    expect(() => rewriteInMemory(file, [{ rule: 'window', params: { window: 4 }, sites: [1] }])).toThrow(/split into 4 head groups by plan --impl blocked/);
    expect(() => rewriteInMemory(file, [{ rule: 'fuse', params: {}, sites: [1] }])).toThrow(/split into 4 head groups/);
    expect(() => rewriteInMemory(file, [planRequest({ 1: PLAN[1] })])).toThrow(/site 1, head 0 .*split into 4 head groups/);
    // The single-choice site is blocked scores already, as after the uniform rule.
    expect(() => rewriteInMemory(file, [{ rule: 'window', params: { window: 4 }, sites: [3] }])).toThrow(/already rewritten into blocked scores by plan/);
    // Nor are its maps read from the first group's Softmax.
    expect(() => exposeAttentionMaps(file, [analyzeModel(file).sites[1]])).toThrow(/site 1: split into 4 head groups .*mask form/);
    // Sites the plan left alone still take rules.
    expect(rewriteInMemory(file, [{ rule: 'window', params: { window: 4 }, sites: [2] }]).report.applied[0].changes.map((c) => c.site)).toEqual([2]);
  });
});

describe('analyze reads a mask-form plan back', () => {
  it('the same sites with their kept heads and choices, computed as one (no groups)', () => {
    const original = analyzeModel(MODEL);
    const again = analyzeModel(rewriteTo(MODEL, [planRequest(PLAN, 'mask')], tmp.dir, 'bytelm-mask').file);
    expect(again.unmatched).toEqual([]);
    expect(readBack(again)).toEqual(expectedReadBack(original, PLAN, false));
  });
});
