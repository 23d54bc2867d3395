// The sparse rules as the pipeline and the CLI see them: parameter errors name the rule, sites a rule cannot rewrite
// are skipped with the reason, each change reports parameters and analytic cost before and after (dense for mask
// forms, reduced for the compute-reducing ones), fused operators are rewritten through their own mask inputs or
// GroupQueryAttention's local_window_size, and the CLI flags reach the rules.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { loadModel } from '../../src/analysis/ir/load';
import { parseRewriteArgs } from '../../src/cli/rewrite';
import { rewriteInMemory, type RuleRequest } from '../../src/rewriters/pipeline';
import { getRule } from '../../src/rewriters/registry';
import { RuleError } from '../../src/rewriters/rule';
import { fixture } from '../helpers/fixtures';
import { rewriteTo, tempDir } from './sparse-helpers';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = tempDir('sparse-rules'); });
afterAll(() => tmp.cleanup());

const llama = fixture('llama-eager-ts-op17').model;
const rewrite = (model: string, req: RuleRequest, seqLen = 1024) => rewriteInMemory(model, [req], { seqLen });

describe('bad parameters are RuleErrors naming the rule', () => {
  it.each<[RuleRequest, RegExp]>([
    [{ rule: 'window', params: { window: 0 } }, /^window: window must be a positive integer, got 0/],
    [{ rule: 'window', params: { window: 2.5 } }, /^window: window must be a positive integer/],
    [{ rule: 'window', params: { window: 8, impl: 'gather' } }, /^window: impl must be one of mask, blocked/],
    [{ rule: 'sink', params: { window: 8, sink: 0 } }, /^sink: sink must be a positive integer/],
    [{ rule: 'strided', params: { window: 8, stride: -1 } }, /^strided: stride must be a positive integer/],
    [{ rule: 'power', params: { window: -3 } }, /^power: window must be a positive integer/],
    [{ rule: 'neighborhood2d', params: { radius: -1 } }, /^neighborhood2d: radius must be a non-negative integer/],
    [{ rule: 'block-topk', params: { block: 0, k: 2 } }, /^block-topk: block must be a positive integer/],
    [{ rule: 'block-topk', params: { block: 16, k: -1 } }, /^block-topk: k must be a non-negative integer/],
    [{ rule: 'block-topk', params: { block: 16, k: 2, impl: 'blocked' } }, /^block-topk: impl must be one of mask, gather/],
  ])('%j', (req, message) => {
    expect(() => rewrite(llama, req)).toThrow(RuleError);
    expect(() => rewrite(llama, req)).toThrow(message);
  });

  it('k larger than the number of blocks is allowed: every block is kept, i.e. dense causal attention', () => {
    expect(() => rewrite(llama, { rule: 'block-topk', params: { block: 16, k: 1000 } })).not.toThrow();
  });
});

describe('sites a rule cannot rewrite', () => {
  const bart = fixture('bart-eager-ts-op17').model;

  it('window skips cross-attention sites, with the reason when they were asked for', () => {
    const sites = analyzeModel(bart).sites;
    const cross = sites.filter((s) => s.kind === 'cross').map((s) => s.id);
    expect(cross.length).toBeGreaterThan(0);
    const all = rewrite(bart, { rule: 'window', params: { window: 4 } });
    expect(all.report.applied[0].sites).toEqual(sites.filter((s) => s.kind === 'self').map((s) => s.id));
    const asked = rewriteInMemory(bart, [{ rule: 'window', params: { window: 4 }, sites: [cross[0], 0] }]);
    expect(asked.report.warnings.join('\n')).toMatch(new RegExp(`window: site ${cross[0]} skipped: cross-attention`));
    expect(() => rewriteInMemory(bart, [{ rule: 'window', params: { window: 4 }, sites: [cross[0]] }])).toThrow(/^window: applies to none of the requested sites/);
  });

  it('neighborhood2d on a text model says there is no image', () => {
    expect(() => rewrite(fixture('bert-eager-ts-op17').model, { rule: 'neighborhood2d', params: { radius: 1 } })).toThrow(/^neighborhood2d: applies to none of the sites \(site 0 skipped: the model has no image input/);
  });

  it('neighborhood2d on a causal model says it is not over image patches', () => {
    expect(() => rewrite(llama, { rule: 'neighborhood2d', params: { radius: 1 } })).toThrow(/causal site/);
  });

  it('no pattern goes on top of blocked scores: compute-reducing forms must come last', () => {
    const blocked = { rule: 'window', params: { window: 4, impl: 'blocked' } };
    expect(() => rewriteInMemory(llama, [blocked, { rule: 'sink', params: { window: 4, sink: 1 } }])).toThrow(/^sink: applies to none of the sites \(site 0 skipped: already rewritten into blocked scores by window --impl blocked/);
    expect(() => rewriteInMemory(llama, [{ rule: 'block-topk', params: { block: 4, k: 1, impl: 'gather' } }, blocked])).toThrow(/already rewritten into blocked scores by block-topk --impl gather/);
    // The other order works: a mask form, then (falling back to a mask, since the scores now feed two things) a window.
    const r = rewriteInMemory(llama, [{ rule: 'sink', params: { window: 8, sink: 1 } }, blocked]).report;
    expect(r.applied.map((a) => a.rule)).toEqual(['sink', 'window']);
    expect(r.warnings.join('\n')).toMatch(/window: site 0: blocked form not possible .*used the mask form/);
  });

  it('block-topk on a fused operator expands it first; one with a KV cache in use is refused with the reason', () => {
    const r = rewrite(fixture('fused-mha').model, { rule: 'block-topk', params: { block: 4, k: 1 } }).report;
    expect(r.applied[0].changes.map((c) => c.after.expandedFrom)).toEqual(['com.microsoft.MultiHeadAttention', 'com.microsoft.MultiHeadAttention']);
    const report = analyzeModel(fixture('fused-mha').model);
    const cached = { ...report.sites[0], kvCache: { reads: true, writes: true, pastInputs: ['past_key'], presentOutputs: ['present_key'] } };
    expect(getRule('block-topk')!.skipReason(cached, { block: 4, k: 1 }, report)).toMatch(/MultiHeadAttention: it uses a KV cache/);
  });
});

describe('reports', () => {
  it('mask form: pattern and keys per query change, the analytic cost stays dense', () => {
    const c = rewrite(llama, { rule: 'window', params: { window: 256 } }, 4096).report.applied[0].changes[0];
    expect(c.before).toMatchObject({ pattern: 'dense causal', keysPerQuery: 2048.5, keysComputedPerQuery: 4096 });
    expect(c.after).toMatchObject({ pattern: 'causal sliding window', window: 256, impl: 'mask', keysComputedPerQuery: 4096 });
    expect(c.after.keysPerQuery).toBeCloseTo((256 * 4096 - (255 * 256) / 2) / 4096, 1);
    expect(c.flopsAfter).toBe(c.flopsBefore);
    expect(c.bytesAfter).toBe(c.bytesBefore);
    expect(c.nodesAdded).toBeGreaterThan(0);
  });

  it('blocked form: cost O(S·(W + R)): at 4096 tokens, window 256 in blocks of 128 rows computes 384 keys per query', () => {
    const r = rewrite(llama, { rule: 'window', params: { window: 256, impl: 'blocked' } }, 4096).report;
    const c = r.applied[0].changes[0];
    expect(c.after).toMatchObject({ impl: 'blocked', blockRows: 128, keysComputedPerQuery: 384 });
    // heads 4, head size 32: 2 products × 2·H·S·keys·D.
    expect(c.flopsAfter).toBe(2 * 2 * 4 * 4096 * 384 * 32);
    expect(c.bytesAfter).toBe(4 * 4 * 4096 * 384);
    expect(c.flopsBefore! / c.flopsAfter!).toBeCloseTo(4096 / 384, 5);
    expect(r.flopsBefore / r.flopsAfter).toBeCloseTo(4096 / 384, 5);
    // Rows chosen by hand: 64 rows, 5 key blocks of 64 = 320 keys.
    const c64 = rewrite(llama, { rule: 'window', params: { window: 256, impl: 'blocked', rows: 64 } }, 4096).report.applied[0].changes[0];
    expect(c64.after).toMatchObject({ blockRows: 64, keysComputedPerQuery: 320 });
    expect(c.nodesRemoved).toBe(2); // the dense Q·Kᵀ and ·V
  });

  it('gather form: at most k + 2 blocks per query block', () => {
    const c = rewrite(llama, { rule: 'block-topk', params: { block: 64, k: 8, impl: 'gather' } }, 4096).report.applied[0].changes[0];
    expect(c.after).toMatchObject({ impl: 'gather', keysComputedPerQuery: 640, blocksKeptPerQueryBlock: 'at most 10 of 64' });
    expect(c.flopsAfter!).toBeLessThan(c.flopsBefore! / 6);
  });

  it('every added node is named after the site\'s Softmax, which keeps its name, or is the shared mask\'s last row', () => {
    const { model } = rewrite(llama, { rule: 'window', params: { window: 8, impl: 'blocked' } });
    const original = loadModel(llama).graph.nodes;
    const before = new Set(original.map((n) => n.name));
    const added = model.graph.nodes.filter((n) => !before.has(n.name));
    const anchors = ['/m/model/layers.0/self_attn/Softmax', '/m/model/layers.1/self_attn/Softmax'];
    const rowOf = (n: { name: string }) => /^(.+)::last_row\//.exec(n.name)?.[1];
    expect(added.filter((n) => !rowOf(n)).every((n) => anchors.some((a) => n.name.startsWith(`${a}::window/`)))).toBe(true);
    for (const a of anchors) expect(model.graph.nodes.filter((n) => n.name === a)).toHaveLength(1);
    // The row is computed from the model's own mask nodes (last-row.ts), and the S×S mask they built is gone.
    const rowNodes = added.filter(rowOf);
    expect(rowNodes.length).toBeGreaterThan(0);
    expect(rowNodes.every((n) => before.has(rowOf(n)!))).toBe(true);
    const mask = original.find((n) => n.name === '/m/model/Where_1')!;
    expect(mask.outputs[0].uses.map((u) => u.node.name).every((n) => anchors.some((a) => n.startsWith(a.replace('Softmax', ''))))).toBe(true);
    expect(model.graph.nodes.some((n) => n.name === '/m/model/Where_1')).toBe(false);
    expect(model.graph.nodes.some((n) => n.name === '/m/model/Where_1::last_row/op')).toBe(true);
  });
});

describe('fused operators', () => {
  it('GroupQueryAttention: blocked uses local_window_size, mask uses attention_bias', () => {
    const gqa = fixture('fused-gqa').model;
    const blocked = rewrite(gqa, { rule: 'window', params: { window: 6, impl: 'blocked' } }).model;
    const node = blocked.graph.nodes.find((n) => n.opType === 'GroupQueryAttention')!;
    expect(Number(node.attr('local_window_size')?.i)).toBe(6);
    expect(node.input(10)).toBeNull();
    const mask = rewrite(gqa, { rule: 'window', params: { window: 6 } }).model;
    const node2 = mask.graph.nodes.find((n) => n.opType === 'GroupQueryAttention')!;
    expect(node2.attr('local_window_size')).toBeUndefined();
    expect(node2.input(10)?.producer?.name).toMatch(/^GroupQueryAttention_13::window\//);
  });

  it.each([
    ['fused-mha', 'MultiHeadAttention', 5],
    ['fused-contrib_attention', 'Attention', 5],
    ['fused-onnx23', 'Attention', 3],
  ])('%s: the pattern goes into %s input %i; blocked falls back to the mask form with a warning', (name, op, index) => {
    const { model, report } = rewrite(fixture(name).model, { rule: 'window', params: { window: 4, impl: 'blocked' } });
    const node = model.graph.nodes.find((n) => n.opType === op)!;
    expect(node.input(index)).not.toBeNull();
    expect(report.warnings[0]).toMatch(/has no compute-reducing window here; used the mask form/);
  });
});

describe('CLI', () => {
  it('--window 8 --impl blocked, --block-topk 64,8 --impl gather, --sink 4 --window 64 reach the rules', () => {
    expect(parseRewriteArgs(['m.onnx', '--window', '8', '--impl', 'blocked', '-o', 'o.onnx']).requests).toEqual([{ rule: 'window', params: { window: 8, impl: 'blocked' } }]);
    expect(parseRewriteArgs(['m.onnx', '--block-topk', '64,8', '--impl', 'gather', '-o', 'o.onnx']).requests).toEqual([{ rule: 'block-topk', params: { block: 64, k: 8, impl: 'gather' } }]);
    expect(parseRewriteArgs(['m.onnx', '--sink', '4', '--window', '64', '-o', 'o.onnx']).requests).toEqual([{ rule: 'sink', params: { window: 64, sink: 4 } }]);
  });

  it('a rewrite from the parsed flags saves a model the analysis reads back with the same sites', () => {
    const parsed = parseRewriteArgs([llama, '--window', '8', '--impl', 'blocked', '-o', 'o.onnx']);
    const { file } = rewriteTo(parsed.input, parsed.requests, tmp.dir, 'cli');
    const after = analyzeModel(file);
    const before = analyzeModel(llama);
    expect(after.sites.map((s) => [s.heads, s.kvHeads, s.headDim, s.causal, s.anchors.softmax, !!s.projections.o])).toEqual(
      before.sites.map((s) => [s.heads, s.kvHeads, s.headDim, s.causal, s.anchors.softmax, !!s.projections.o]),
    );
  });
});
