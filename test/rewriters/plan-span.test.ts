// The `plan` rule with span laws (issue 10, MoA's elastic spans): resolved at the rewrite's length, each head computes
// exactly what the uniform rule computes with the window W(L) of its law, at two lengths; the report shows each law with
// its value; without a known length the rule refuses in one line, and on a fixed-length model it uses the model's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rewriteInMemory } from '../../src/rewriters/pipeline';
import { resolveSpan } from '../../src/rewriters/plan/span';
import { fixture } from '../helpers/fixtures';
import { floatOutputs, maxAbsDiff, runModel, synthesizedFeeds, tempDir } from './sparse-helpers';
import { HEAD_OUT, headSlice, planRequest, rewriteWithHeads } from './plan-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('plan-span'); });
afterAll(() => tmp.cleanup());

const LAWS = { window: { a: 0, b: 0.25 }, sink: { a: -2, b: 0.25 }, strided: { a: 1, b: 0.05 }, power: { a: 2, b: 0 } };
const CHOICES = ['window 0 + 0.25·L', 'sink 2 + window -2 + 0.25·L', 'strided 3 + window 1 + 0.05·L', 'power + window 2 + 0·L'];

describe('plan with span laws (llama-eager-ts-op17, site 0, a length the model does not fix)', () => {
  it.each([24, 40])('at L = %i each head computes the uniform rule with its W(L)', async (L) => {
    const m = fixture('llama-eager-ts-op17').model;
    const feeds = synthesizedFeeds(m, L, 0);
    const w = (law: { a: number; b: number }) => resolveSpan(law, L);
    const uniform: [number, { rule: string; params: Record<string, number> }][] = [
      [0, { rule: 'window', params: { window: w(LAWS.window) } }],
      [1, { rule: 'sink', params: { sink: 2, window: w(LAWS.sink) } }],
      [2, { rule: 'strided', params: { stride: 3, window: w(LAWS.strided) } }],
      [3, { rule: 'power', params: { window: w(LAWS.power) } }],
    ];
    // The windows differ between the two lengths (6, 4, 2, 2 at 24; 10, 8, 3, 2 at 40).
    expect(uniform.map(([, r]) => r.params.window)).toEqual(L === 24 ? [6, 4, 2, 2] : [10, 8, 3, 2]);
    const mixed = (await runModel(rewriteWithHeads(m, [planRequest({ 0: CHOICES })], tmp.dir, `law-${L}`, 0, L), feeds))[HEAD_OUT].data as Float32Array;
    const dense = (await runModel(rewriteWithHeads(m, [], tmp.dir, `law-dense-${L}`, 0), feeds))[HEAD_OUT].data as Float32Array;
    for (const [h, req] of uniform) {
      const ref = (await runModel(rewriteWithHeads(m, [{ ...req, sites: [0] }], tmp.dir, `law-ref-${L}-${h}`, 0, L), feeds))[HEAD_OUT].data as Float32Array;
      expect(maxAbsDiff(headSlice(mixed, 4, h), headSlice(ref, 4, h)), `head ${h}: ${CHOICES[h]} at ${L}`).toBeLessThan(1e-5);
      expect(maxAbsDiff(headSlice(mixed, 4, h), headSlice(dense, 4, h)), `head ${h} changed`).toBeGreaterThan(1e-3);
    }
  });

  it('the blocked form resolves the laws the same way as the mask form', async () => {
    const m = fixture('llama-eager-ts-op17').model;
    const feeds = synthesizedFeeds(m, 40, 0);
    const req = (impl: 'mask' | 'blocked') => planRequest({ 0: CHOICES, 1: ['window 0 + 0.25·L', 'window 0 + 0.25·L', 'window 4', 'dense'] }, impl);
    const mask = await floatOutputs(rewriteWithHeads(m, [req('mask')], tmp.dir, 'law-mask', undefined, 40), feeds);
    const blocked = await floatOutputs(rewriteWithHeads(m, [req('blocked')], tmp.dir, 'law-blocked', undefined, 40), feeds);
    for (const o of Object.keys(mask)) expect(maxAbsDiff(blocked[o], mask[o]), o).toBeLessThan(1e-4);
  });

  it('reports each law with its value and the length used; without a length it refuses in one line', () => {
    const m = fixture('llama-eager-ts-op17').model;
    const { report } = rewriteInMemory(m, [planRequest({ 0: CHOICES })], { seqLen: 40 });
    expect(report.applied[0].changes[0].after.heads).toEqual([
      'window 0 + 0.25·L (10 at L = 40)', 'sink 2 + window -2 + 0.25·L (8 at L = 40)', 'strided 3 + window 1 + 0.05·L (3 at L = 40)', 'power + window 2 + 0·L (2 at L = 40)',
    ]);
    expect(report.warnings).toContain('plan: span laws resolved at L = 40, the length given: the rewritten model keeps these windows at whatever length it is run with');
    let message = '';
    try {
      rewriteInMemory(m, [planRequest({ 0: CHOICES })]);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe('plan: the plan gives span laws (a + b·L), which need the length, and the model does not fix it: give the length the rewritten model will run at (--seq L)');
    // A plan without laws needs no length, as before.
    expect(() => rewriteInMemory(m, [planRequest({ 0: ['window 4', 'dense', 'dense', 'dense'] })])).not.toThrow();
  });
});

describe('plan with span laws on a model of fixed length (vit-eager-ts-op17)', () => {
  it("resolves at the model's own length and equals the uniform window there", async () => {
    const m = fixture('vit-eager-ts-op17').model;
    const viaLaw = rewriteInMemory(m, [planRequest({ 0: Array.from({ length: 4 }, () => 'window 1 + 0.25·L') })]);
    const seq = viaLaw.report.seqLen;
    expect(viaLaw.report.warnings).toContain(`plan: span laws resolved at L = ${seq}, the model's own length`);
    // A length given that is not the model's cannot be the one it runs at: the model's is used, and the warning says so.
    const given = rewriteInMemory(m, [planRequest({ 0: Array.from({ length: 4 }, () => 'window 1 + 0.25·L') })], { seqLen: 64 });
    expect(given.report.warnings).toContain(`plan: span laws resolved at L = ${seq}, the model's own length (not the 64 given)`);
    const w = resolveSpan({ a: 1, b: 0.25 }, seq);
    expect(viaLaw.report.applied[0].changes[0].after.plan).toBe(`4×window 1 + 0.25·L (${w} at L = ${seq})`);
    const feeds = synthesizedFeeds(m, seq, 0);
    const a = rewriteWithHeads(m, [planRequest({ 0: Array.from({ length: 4 }, () => 'window 1 + 0.25·L') })], tmp.dir, 'vit-law');
    const b = rewriteWithHeads(m, [{ rule: 'window', params: { window: w }, sites: [0] }], tmp.dir, 'vit-uniform');
    const [oa, ob, orig] = [await floatOutputs(a, feeds), await floatOutputs(b, feeds), await floatOutputs(m, feeds)];
    for (const o of Object.keys(ob)) expect(maxAbsDiff(oa[o], ob[o]), o).toBeLessThan(1e-5);
    expect(Object.keys(ob).some((o) => maxAbsDiff(ob[o], orig[o]) > 1e-4), 'the window changes the outputs').toBe(true);
  });
});
