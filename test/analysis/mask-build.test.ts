// The nodes that only build the sites' masks (src/analysis/attention/mask-build.ts), which the profiler measures apart
// for the model bound of sparse rewrites: on the TorchScript Llama export, the causal+padding chain up to its final
// Where, without what other parts of the model also read; the same chain behind `fuse`'s GroupQueryAttention bias; and
// nothing once the blocked window reads the mask's last row only.
import { describe, expect, it } from 'vitest';
import { analyzeLoaded } from '../../src/analysis/analyze';
import { rewriteInMemory } from '../../src/rewriters/pipeline';
import { fixture } from '../helpers/fixtures';
import { loadModel } from '../../src/analysis/ir/load';
import { tempDir } from './helpers/ort';
import { softcappedAttention } from '../rewriters/fuse-helpers';

const llama = fixture('llama-eager-ts-op17').model;

describe('mask building', () => {
  it('lists the exported causal+padding chain under each site that reads it, nothing that another part reads', () => {
    const model = loadModel(llama);
    const r = analyzeLoaded(model);
    expect(r.sites).toHaveLength(2);
    const [a, b] = r.sites.map((s) => s.maskBuild ?? []);
    expect(a).toEqual(b);
    for (const op of ['Where', 'Expand', 'And', 'LessOrEqual']) {
      expect(a.some((n) => model.graph.nodes.find((x) => x.name === n)?.opType === op), op).toBe(true);
    }
    const byName = new Map(model.graph.nodes.map((n) => [n.name, n]));
    const listed = new Set(a);
    const siteNodes = new Set(r.sites.flatMap((s) => s.nodes));
    for (const name of a) {
      const n = byName.get(name)!;
      expect(siteNodes.has(name)).toBe(false);
      // Every reader is another mask node or the site's own mask Add.
      for (const o of n.outputs) for (const u of o.uses) expect(listed.has(u.node.name) || siteNodes.has(u.node.name), `${name} -> ${u.node.name}`).toBe(true);
    }
    // The positions also feed the rotary embedding: not counted.
    const range = model.graph.nodes.find((n) => n.opType === 'Range' && n.outputs[0].uses.some((u) => !listed.has(u.node.name) && !siteNodes.has(u.node.name)));
    expect(range).toBeDefined();
    expect(listed.has(range!.name)).toBe(false);
  });

  it('follows the mask through fuse\'s bias to GroupQueryAttention, and finds none once the window reads one row', () => {
    const original = analyzeLoaded(loadModel(llama)).sites[0].maskBuild;
    const fused = analyzeLoaded(rewriteInMemory(llama, [{ rule: 'fuse', params: {} }]).model);
    expect(fused.sites.map((s) => s.form)).toEqual(['com.microsoft.GroupQueryAttention', 'com.microsoft.GroupQueryAttention']);
    expect(fused.sites[0].maskBuild).toEqual(original);
    const blocked = analyzeLoaded(rewriteInMemory(llama, [{ rule: 'window', params: { window: 8, impl: 'blocked' } }]).model);
    expect(blocked.sites.map((s) => s.maskBuild)).toEqual([undefined, undefined]);
    // A model without masks lists none; with its causal mask built from Q's length, that chain.
    const tmp = tempDir('mask-build');
    try {
      const shape = { heads: 2, dim: 8, softcap: 30, opset: 17 };
      expect(analyzeLoaded(loadModel(softcappedAttention(tmp.dir, { ...shape, causal: false }, 'plain'))).sites[0].maskBuild).toBeUndefined();
      const causal = loadModel(softcappedAttention(tmp.dir, { ...shape, causal: true }, 'causal'));
      const build = analyzeLoaded(causal).sites[0].maskBuild ?? [];
      expect(build.map((n) => causal.graph.nodes.find((x) => x.name === n)!.opType).sort()).toEqual(['Gather', 'LessOrEqual', 'Range', 'Shape', 'Unsqueeze', 'Unsqueeze', 'Where']);
    } finally {
      tmp.cleanup();
    }
  });
});
