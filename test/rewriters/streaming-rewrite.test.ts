// Rewrites that stream their weights produce the same model as the in-memory path, on every shared fixture: the same
// nodes and, tensor for tensor, the same bytes, whether a weight was computed into memory and embedded or written piece
// by piece to the weight store that became the data file. Plus: constants shared between sites, the SIMD and the
// JavaScript dictionary fit agreeing, and the CLI's flags, progress and Ctrl-C.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli';
import { parseRewriteArgs } from '../../src/cli/rewrite';
import { nodeToProto } from '../../src/analysis/ir/to-proto';
import { loadModel, type Model } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { rewriteInMemory, rewriteModel, type RuleRequest } from '../../src/rewriters/pipeline';
import { computeAtoms, fitDictionary, type FitSource } from '../../src/rewriters/shared/dictionary-fit';
import { feedsOf, fixture, fixtureNames, outputsOf, scratch, sitesOf } from './shared-prune-helpers';

const ROOT = path.resolve(__dirname, '..', '..');
let tmp: { dir: string; cleanup: () => void };
beforeAll(() => { tmp = scratch('streaming-rewrite'); });
afterAll(() => tmp.cleanup());

/** The first of these rewrites that applies to the fixture: a chain (its first rule's weights die), or one rule. */
function requestsFor(file: string): RuleRequest[] {
  const sites = sitesOf(file);
  const prune: RuleRequest = { rule: 'prune-heads', params: { heads: Object.fromEntries(sites.filter((s) => (s.heads ?? 0) > 1).map((s) => [s.id, [0]])) } };
  const candidates: RuleRequest[][] = [
    [prune, { rule: 'dictionary', params: { atoms: 1 } }],
    [prune],
    [{ rule: 'gqa', params: { groups: 1 } }],
    [{ rule: 'window', params: { window: 4 } }],
    [{ rule: 'drop-attention', params: { sites: [sites[0].id] } }], // opset-11/12 models with packed weights
  ];
  for (const c of candidates) {
    try {
      rewriteInMemory(file, c, { seqLen: 64 });
      return c;
    } catch {
      // not applicable to this fixture: try the next
    }
  }
  throw new Error(`no rewrite applies to ${file}`);
}

function expectSameModel(got: Model, want: Model): void {
  const nodes = (m: Model) => m.graph.nodes.map((n) => JSON.stringify(nodeToProto(n)));
  expect(nodes(got)).toEqual(nodes(want));
  expect([...got.graph.initializers.keys()]).toEqual([...want.graph.initializers.keys()]);
  for (const [name, w] of want.graph.initializers) {
    const g = got.graph.initializers.get(name)!;
    expect({ name, dims: g.dims, type: g.dataType }).toEqual({ name, dims: w.dims, type: w.dataType });
    expect(Buffer.from(g.bytes()).equals(Buffer.from(w.bytes())), `bytes of ${name}`).toBe(true);
  }
}

describe('streamed output equals the in-memory path', () => {
  for (const name of fixtureNames()) {
    it(name, () => {
      const model = fixture(name).model;
      const requests = requestsFor(model);
      const dir = path.join(tmp.dir, name);
      fs.mkdirSync(dir);
      const inMemory = rewriteInMemory(model, requests, { seqLen: 64 }).model;
      const reference = saveModel(inMemory, path.join(dir, 'memory.onnx'), { externalData: 'embed' });
      const streamed = rewriteModel(model, requests, path.join(dir, 'streamed.onnx'), { seqLen: 64, save: { externalData: 'external' } });
      expect(streamed.output!.weights.written.tensors).toBeGreaterThan(0);
      expectSameModel(loadModel(streamed.output!.file), loadModel(reference.file));
      expect(fs.readdirSync(dir).sort()).toEqual(['memory.onnx', 'streamed.onnx', 'streamed.onnx.data']);
    });
  }

  it('and runs the same in onnxruntime (a packed QKV model, a fused one, a grouped-query one)', async () => {
    for (const name of ['gpt2-eager-ts-op17', 'fused-gqa', 'llama-sdpa-ts-op17']) {
      const dir = path.join(tmp.dir, name);
      const feeds = feedsOf(name);
      expect(await outputsOf(path.join(dir, 'streamed.onnx'), feeds), name).toEqual(await outputsOf(path.join(dir, 'memory.onnx'), feeds));
    }
  });
});

describe('constants a rewrite adds', () => {
  it('are shared between sites when they are the same: one mask band for every site of a blocked window', () => {
    const model = fixture('llama-eager-ts-op17').model;
    const { model: m } = rewriteInMemory(model, [{ rule: 'window', params: { window: 8, impl: 'blocked' } }], { seqLen: 64 });
    const bands = [...m.graph.initializers.keys()].filter((n) => n.endsWith('::window/band'));
    expect(bands).toHaveLength(1);
    const readers = m.graph.values.get(bands[0])!.uses.map((u) => u.node.name.split('::')[0]);
    expect(new Set(readers).size).toBe(sitesOf(model).length);
  });
});

describe('dictionary fit', () => {
  it('the SIMD kernels and the JavaScript loops give the same atoms and a Gram matrix equal to rounding', () => {
    const L = 5;
    const n = 3001; // odd: the kernels leave the last element to JavaScript
    const data = Array.from({ length: L }, (_, l) => Float32Array.from({ length: n }, (_, i) => Math.sin(0.013 * i * (l + 1)) + 0.1 * l));
    const sources: FitSource[] = data.map((d) => ({ length: n, read: (at, into) => into.set(d.subarray(at, at + into.length)) }));
    const options = { align: 1000 };
    const simd = fitDictionary(sources, 3, options);
    const js = fitDictionary(sources, 3, { ...options, noWasm: true });
    for (let i = 0; i < simd.sigma.length; i++) expect(Math.abs(simd.sigma[i] - js.sigma[i])).toBeLessThan(1e-9 * js.sigma[0]);
    const atoms = (noWasm: boolean) => {
      const out = [0, 1, 2].map(() => new Float64Array(n));
      computeAtoms(sources, simd, (a, at, values) => out[a].set(values, at), { ...options, noWasm });
      return out;
    };
    expect(atoms(false)).toEqual(atoms(true));
  });
});

describe('rewrite CLI', () => {
  it('parses --self-contained and --progress, and refuses --self-contained with embedded output', () => {
    const base = [fixture('llama-eager-ts-op17').model, '--gqa', '2', '-o', 'x.onnx'];
    expect(parseRewriteArgs([...base, '--self-contained', '--progress'])).toMatchObject({ selfContained: true, progress: true });
    expect(parseRewriteArgs([...base, '--quiet'])).toMatchObject({ selfContained: false, progress: false });
    expect(() => parseRewriteArgs([...base, '--self-contained', '--external-data', 'embed'])).toThrow(/--self-contained applies to external data/);
  });

  it('says where the weights went', async () => {
    const out = path.join(tmp.dir, 'cli-weights.onnx');
    let stdout = '';
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((c: string | Uint8Array) => ((stdout += String(c)), true)) as typeof process.stdout.write;
    try {
      expect(await main(['rewrite', fixture('llama-eager-ts-op17').model, '--gqa', '1', '-o', out, '--external-data', 'external'])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(stdout).toMatch(/^weights: .* written to cli-weights\.onnx\.data \(external: every weight of at least 1024 bytes in external data\)$/m);
  });

  it('built: shows progress on stderr, and Ctrl-C stops the rewrite and removes what it wrote', async () => {
    const cli = path.join(ROOT, 'dist', 'cli.js');
    expect(fs.existsSync(cli), 'npm run build first').toBe(true);
    const dir = path.join(tmp.dir, 'sigint');
    fs.mkdirSync(dir);
    // Big enough (48 sites, 4 MB per projection) that the rewrite is still running when the signal arrives.
    const synth = await run([cli, 'synth', '--output', path.join(dir, 'model.onnx'), '--layers', '48', '--hidden', '1024', '--heads', '8', '--vocab', '64', '--external']);
    expect(synth.code).toBe(0);
    const heads = Array.from({ length: 48 }, (_, i) => `${i}:1`).join(';');
    const r = await run([cli, 'rewrite', path.join(dir, 'model.onnx'), '--prune-heads', heads, '-o', path.join(dir, 'out.onnx'), '--progress'], /rewrite: prune-heads: site/);
    expect(r.stderr).toMatch(/^load: loading model\.onnx$/m);
    expect(r.stderr).toMatch(/stopping at the next safe point/);
    expect(r.stderr).toMatch(/rewrite cancelled; nothing was written/);
    expect(r.code).toBe(130);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.onnx', 'model.onnx.data']);
  });
});

/** Runs node with `args`; with `interruptOn`, sends SIGINT once stderr matches it. */
function run(args: string[], interruptOn?: RegExp): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (interruptOn && !sent && interruptOn.test(stderr)) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    child.on('close', (code) => resolve({ code, stderr }));
  });
}
