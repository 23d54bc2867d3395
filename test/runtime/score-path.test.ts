// The profiler's score path (src/runtime/sites.ts) of original and rewritten sites: what the score-path share and the
// sparse rules' model bound count. A rewrite's own nodes must be in it wherever they sit in graph order, or a blocked
// window would look cheaper than it is; the projections must not, whoever wrote them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import type { SiteInfo } from '../../src/analysis/report/types';
import { scorePath } from '../../src/runtime/sites';
import { fixture } from '../helpers/fixtures';
import { rewriteTo, tempDir } from '../rewriters/sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('score-path'); });
afterAll(() => tmp.cleanup());

const MODEL = fixture('llama-eager-ts-op17').model;

const projectionsOf = (s: SiteInfo) => Object.values(s.projections).flatMap((p) => (p ? [p.node, ...(p.biasNode ? [p.biasNode] : [])] : []));
const rotaryOf = (s: SiteInfo) => s.nodes.filter((n) => /\/(Neg|Neg_\d+|Concat_[34]|Slice(_\d+)?)$/.test(n));

describe('the score path', () => {
  it('of an exported site: Q·Kᵀ to ·V, without projections, head splits or rotary', () => {
    const site = analyzeModel(MODEL).sites[0];
    const core = scorePath(site);
    expect(core[0]).toBe(site.anchors.qk);
    expect(core[core.length - 1]).toBe(site.anchors.pv);
    expect(core).toContain(site.anchors.softmax);
    expect(core.filter((n) => projectionsOf(site).includes(n))).toEqual([]);
    expect(rotaryOf(site).length).toBeGreaterThan(0);
    expect(core.filter((n) => rotaryOf(site).includes(n))).toEqual([]);
  });

  it('of a blocked window: every node the rule added (the K and V windows before Q·Kᵀ included), still no projections', () => {
    const { file } = rewriteTo(MODEL, [{ rule: 'window', params: { window: 4, impl: 'blocked' } }], tmp.dir, 'window');
    const site = analyzeModel(file).sites[0];
    const core = scorePath(site);
    const added = site.nodes.filter((n) => n.startsWith(`${site.anchors.softmax}::window/`));
    const beforeQk = added.filter((n) => site.nodes.indexOf(n) < site.nodes.indexOf(site.anchors.qk!));
    expect(beforeQk.length).toBeGreaterThan(10); // the windows of K and V are built before the blocked product
    expect(core).toEqual(expect.arrayContaining(added));
    expect(core.filter((n) => projectionsOf(site).includes(n))).toEqual([]);
    expect(core.filter((n) => rotaryOf(site).includes(n))).toEqual([]);
  });

  it('of a fused site: the operator and the nodes `fuse` wrote for it, not the projections', () => {
    const { file } = rewriteTo(MODEL, [{ rule: 'fuse', params: {} }], tmp.dir, 'fuse');
    const site = analyzeModel(file).sites[0];
    const core = scorePath(site);
    expect(site.anchors.fused).toBeDefined();
    expect(core).toContain(site.anchors.fused);
    // The rotation `fuse` wrote (RotaryEmbedding and its tables) is the site's, not its score path's: the exported
    // rotation it replaced was not in the original's either.
    const rotary = site.nodes.filter((n) => n.startsWith(`${site.anchors.fused}::fuse/rotary/`));
    expect(rotary.length).toBeGreaterThan(1);
    expect(core.filter((n) => rotary.includes(n))).toEqual([]);
    expect(core).toEqual(expect.arrayContaining(site.nodes.filter((n) => n.startsWith(`${site.anchors.fused}::fuse/`) && !rotary.includes(n))));
    expect(core.filter((n) => projectionsOf(site).includes(n))).toEqual([]);
    expect(core.length).toBeLessThan(site.nodes.length);
  });

  it('leaves out the bias Adds of projections written as MatMul + Add, in the export and after `fuse`', () => {
    const bert = fixture('bert-eager-ts-op17').model;
    const site = analyzeModel(bert).sites[0];
    for (const role of ['q', 'k', 'v', 'o'] as const) {
      const p = site.projections[role]!;
      expect(p.biasNode, role).toBeDefined();
      expect(site.nodes).toContain(p.biasNode);
    }
    const fused = analyzeModel(rewriteTo(bert, [{ rule: 'fuse', params: {} }], tmp.dir, 'bert-fuse').file).sites[0];
    expect(fused.anchors.fused).toBeDefined();
    const biasAdds = Object.values(fused.projections).flatMap((p) => (p?.biasNode ? [p.biasNode] : []));
    expect(biasAdds.length).toBe(4);
    expect(scorePath(fused).filter((n) => biasAdds.includes(n))).toEqual([]);
    expect(scorePath(fused)).toContain(fused.anchors.fused);
  });
});
