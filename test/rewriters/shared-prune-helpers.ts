// Shared by the shared-matrix and pruning rule tests: rewriting a fixture into a temporary folder, running models
// directly in onnxruntime on the fixture's manifest inputs, exposing intermediate values as extra outputs (for
// references computed outside the rewritten graph), and reading initializers back.
import * as fs from 'node:fs';
import type { SiteInfo } from '../../src/analysis/report/types';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { analyzeModel, analyzeWithSites } from '../../src/analysis/analyze';
import { GraphBuilder } from '../../src/analysis/ir/builder';
import { loadModel } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { addHeadMasks } from '../../src/rewriters/prune/head-mask';
import { rewriteModel, type RewriteReport, type RuleRequest } from '../../src/rewriters/pipeline';
import { fixture, type FixtureManifest } from '../helpers/fixtures';
import { manifestFeeds, runModel, tempDir, type Feeds } from '../analysis/helpers/ort';

export { fixture, fixtureNames } from '../helpers/fixtures';
export { runModel, tempDir, type Feeds } from '../analysis/helpers/ort';

export interface Rewritten {
  file: string;
  report: RewriteReport;
}

/** Rewrites fixture `name` with `requests` into `dir` (the fixture itself is only read). */
export function rewriteFixture(name: string, requests: RuleRequest[], dir: string, tag = 'out'): Rewritten {
  const f = fixture(name);
  const file = path.join(dir, `${name}.${tag}.onnx`);
  const report = rewriteModel(f.model, requests, file);
  return { file, report };
}

export function feedsOf(name: string): Feeds {
  const f = fixture(name);
  return manifestFeeds(f.dir, f.manifest.inputs);
}

export function manifestOf(name: string): FixtureManifest {
  return fixture(name).manifest;
}

/** A fixture file next to its manifest as float32 values (oracle outputs). */
export function fixtureFloats(name: string, file: string): Float32Array {
  const buf = new Uint8Array(fs.readFileSync(path.join(fixture(name).dir, file)));
  return new Float32Array(buf.buffer);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

export async function outputsOf(file: string, feeds: Feeds): Promise<Record<string, Float32Array>> {
  const r = await runModel(file, feeds);
  return Object.fromEntries(Object.entries(r).map(([k, t]) => [k, t.data as Float32Array]));
}

/** A copy of `file` whose outputs also include the named values (float32), for comparing intermediate tensors. */
export function exposeValues(file: string, names: string[], dir: string, tag: string): string {
  const model = loadModel(file);
  const b = new GraphBuilder(model);
  for (const n of names) {
    const v = model.graph.values.get(n);
    if (!v) throw new Error(`${file} has no value '${n}'`);
    if (!v.isGraphOutput) b.output(v, 'float32');
  }
  const out = path.join(dir, `${path.basename(file, '.onnx')}.${tag}.onnx`);
  saveModel(b.finish(), out);
  return out;
}

/** Runs a model and returns the named outputs with their dims. */
export async function tensorsOf(file: string, feeds: Feeds, names: string[]): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
  try {
    const r = await session.run(feeds, names);
    return Object.fromEntries(names.map((n) => [n, { data: r[n].data as Float32Array, dims: [...r[n].dims] }]));
  } finally {
    await session.release();
  }
}

/** Batched matrix product over the last two axes (leading axes equal): a reference computed outside any graph. */
export function batchedMatMul(a: { data: Float32Array; dims: number[] }, b: { data: Float32Array; dims: number[] }): Float64Array {
  const [m, k] = a.dims.slice(-2);
  const [k2, n] = b.dims.slice(-2);
  if (k !== k2) throw new Error(`inner dims ${k} and ${k2}`);
  const batch = a.data.length / (m * k);
  if (b.data.length / (k * n) !== batch) throw new Error('batch dims differ');
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let x = 0; x < k; x++) s += a.data[t * m * k + i * k + x] * b.data[t * k * n + x * n + j];
        out[t * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

/**
 * Sets a site's output-projection bias to zero at the node that adds it (Gemm's C, or the Add after a MatMul), leaving
 * any other reader of a shared bias alone: with all heads zeroed too, the site then adds nothing, as when dropped.
 */
function zeroOutputBias(b: GraphBuilder, site: SiteInfo): void {
  const o = site.projections.o;
  const node = o ? b.graph.nodeByName(o.node) : undefined;
  if (!o?.bias || !node) return;
  const add = node.opType === 'Gemm' ? node : node.outputs[0].uses.find((u) => u.node.opType === 'Add')?.node;
  if (!add) return;
  const idx = add === node ? 2 : add.inputs.findIndex((i) => i !== node.outputs[0]);
  const width = loadedDims(add.input(idx));
  b.setInput(add, idx, b.initializer(b.uniqueName(`${o.bias}_zero`), [width], { dtype: 'float32', data: new Float32Array(width) }));
}

function loadedDims(v: import('../../src/analysis/ir/graph').Value | null): number {
  let cur = v;
  for (let i = 0; i < 4 && cur; i++) {
    if (cur.constant) return cur.constant.size;
    cur = cur.producer?.input(0) ?? null;
  }
  throw new Error(`no constant bias behind '${v?.name}'`);
}

/** The float values of an initializer in a saved model. */
export function initializerValues(file: string, name: string): { dims: number[]; data: number[] } {
  const model = loadModel(file);
  const t = model.graph.initializers.get(name);
  if (!t) throw new Error(`${file} has no initializer '${name}'`);
  return { dims: t.dims, data: t.toNumbers() };
}

export function sitesOf(file: string) {
  return analyzeModel(file).sites;
}

export function fileSize(file: string): number {
  return fs.statSync(file).size;
}

/** Float elements stored in a model (initializers and Constant nodes): its parameters, whatever their layout. */
export function floatParams(file: string): number {
  const g = loadModel(file).graph;
  const floats = (t: { dataType: number; size: number } | undefined) => (t && (t.dataType === 1 || t.dataType === 10) ? t.size : 0);
  let n = 0;
  for (const t of g.initializers.values()) n += floats(t);
  for (const node of g.nodes) if (node.opType === 'Constant') n += floats(node.constantTensor());
  return n;
}

/**
 * Whether pruning `heads` must leave fewer parameters: it must unless every pruned site shares its Q weight with
 * other sites (layers the exporter stored once) and each of its heads is still kept by one of them, so that nothing of
 * the shared weight can go.
 */
export function pruningCanShrink(name: string, heads: Record<number, number[]>): boolean {
  const sites = sitesOf(fixture(name).model);
  const kept = (id: number, h: number) => !(heads[id] ?? []).includes(h);
  return Object.keys(heads).map(Number).some((id) => {
    const s = sites[id];
    const sharing = sites.filter((o) => o.projections.q && o.projections.q.weight === s.projections.q?.weight);
    if (sharing.length < 2) return (heads[id] ?? []).length > 0;
    return Array.from({ length: s.heads! }, (_, h) => h).some((h) => sharing.every((o) => !kept(o.id, h)));
  });
}

/** A pruned file is smaller; where nothing can go (see pruningCanShrink), it at least stores no more parameters. */
export function expectPrunedStorage(name: string, heads: Record<number, number[]>, file: string): void {
  const original = fixture(name).model;
  if (pruningCanShrink(name, heads)) expect(fileSize(file), 'file size').toBeLessThan(fileSize(original));
  else expect(floatParams(file), 'parameters').toBeLessThanOrEqual(floatParams(original));
}

/** Temp folder per test file. */
export function scratch(prefix: string) {
  return tempDir(prefix);
}

/**
 * Outputs of a fixture (or a model file) with the given heads zeroed through head-mask inputs: the importance
 * scoring model, an independent way to remove heads' contributions.
 */
export async function maskedOutputs(nameOrFile: string, zero: Record<number, number[]>, feeds: Feeds, dir: string, options: { zeroOutputBias?: number[]; onlyZeroed?: boolean } = {}): Promise<Record<string, Float32Array>> {
  const isFile = nameOrFile.endsWith('.onnx');
  const model = loadModel(isFile ? nameOrFile : fixture(nameOrFile).model);
  const { report, sites } = analyzeWithSites(model);
  const b = new GraphBuilder(model);
  for (const id of options.zeroOutputBias ?? []) zeroOutputBias(b, report.sites.find((s) => s.id === id)!);
  // onlyZeroed: masks only on the sites that zero a head (others may have no per-head output to mask).
  const chosen = report.sites.map((info, i) => ({ info, raw: sites[i] })).filter((s) => !options.onlyZeroed || zero[s.info.id]);
  const masks = addHeadMasks(b, chosen);
  const file = path.join(dir, `${path.basename(nameOrFile, '.onnx')}.masked.onnx`);
  saveModel(b.finish(), file);
  const all: Feeds = { ...feeds };
  for (const m of masks) {
    const data = new Float32Array(m.heads).fill(1);
    for (const h of zero[m.site] ?? []) data[h] = 0;
    all[m.input] = new ort.Tensor('float32', data, [m.heads]);
  }
  return outputsOf(file, all);
}
