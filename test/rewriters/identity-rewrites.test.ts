// Rewrites that must change nothing, on every shared fixture: grouped-query attention at the number of KV heads the
// site already has leaves every output within 1e-4 (a check of the head map: the KV heads each query head reads
// must be the ones the rule groups).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedsOf, fixture, fixtureNames, maxAbsDiff, outputsOf, rewriteFixture, scratch, sitesOf } from './shared-prune-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('identity-rewrites'); });
afterAll(() => tmp.cleanup());

describe('gqa at the KV heads already present', () => {
  it.each(fixtureNames())('%s', async (name) => {
    const sites = sitesOf(fixture(name).model);
    const kv = sites[0].kvHeads!;
    // One group count for the whole model: the sites that have exactly that many KV heads.
    const ids = sites.filter((s) => s.kvHeads === kv && s.heads! % kv === 0).map((s) => s.id);
    const { file } = rewriteFixture(name, [{ rule: 'gqa', params: { groups: kv }, sites: ids }], tmp.dir, 'gqa-same');
    const feeds = feedsOf(name);
    const before = await outputsOf(fixture(name).model, feeds);
    const after = await outputsOf(file, feeds);
    for (const [out, want] of Object.entries(before)) expect(maxAbsDiff(after[out], want), out).toBeLessThanOrEqual(1e-4);
  });
});
