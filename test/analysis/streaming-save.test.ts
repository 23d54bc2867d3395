// Streaming saves at small scale: where every tensor of a rewritten model goes (embedded, referenced in the input's
// data file, written or copied to the output's), what `auto` chooses and why, that the input's data file is never
// written to, and that no temporary file survives a save, a failed save or a cancelled one.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelError } from '../../src/analysis/onnx/errors';
import { loadModel, type Model } from '../../src/analysis/ir/load';
import { saveModel } from '../../src/analysis/ir/save';
import { Cancelled } from '../../src/analysis/onnx/progress';
import { WeightStore } from '../../src/analysis/onnx/weight-store';
import { rewriteInMemory, rewriteModel, type RuleRequest } from '../../src/rewriters/pipeline';
import { buildLlama } from '../../src/synth/llama';
import { fixture } from '../helpers/fixtures';
import { manifestFeeds, runModel, tempDir, tensorBytes } from './helpers/ort';

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => { tmp = tempDir('streaming-save'); });
afterEach(() => tmp.cleanup());

const SMALL = 'llama-eager-ts-op17';
const PRUNE: RuleRequest[] = [{ rule: 'prune-heads', params: { heads: { 0: [1], 1: [0, 3] } } }];

function folder(...parts: string[]): string {
  const dir = path.join(tmp.dir, ...parts);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** The fixture saved with every weight in external data, as large models ship: `dir/model.onnx` + `model.onnx.data`. */
function externalInput(dir: string): { file: string; data: string } {
  const saved = saveModel(loadModel(fixture(SMALL).model), path.join(dir, 'model.onnx'), { externalData: 'external' });
  return { file: saved.file, data: saved.dataFile! };
}

function fingerprint(file: string): { sha: string; mtimeMs: number; size: number } {
  const st = fs.statSync(file);
  return { sha: createHash('sha256').update(fs.readFileSync(file)).digest('hex'), mtimeMs: st.mtimeMs, size: st.size };
}

/** Where each initializer of a saved model lives: 'embedded' or the data file's location. */
function locations(model: Model): Map<string, string> {
  return new Map([...model.graph.initializers.values()].map((t) => [t.name, t.external ? t.external.location : 'embedded']));
}

async function outputs(file: string): Promise<Record<string, Buffer>> {
  const fx = fixture(SMALL);
  const out = await runModel(file, manifestFeeds(fx.dir, fx.manifest.inputs));
  return Object.fromEntries(Object.entries(out).map(([k, t]) => [k, Buffer.from(tensorBytes(t))]));
}

describe('a rewrite of a model with external data', () => {
  it('next to its input: unchanged weights are referenced where they are, changed ones written, the input untouched', async () => {
    const dir = folder('in');
    const input = externalInput(dir);
    const before = fingerprint(input.data);
    const report = rewriteModel(input.file, PRUNE, path.join(dir, 'pruned.onnx'));
    const w = report.output!.weights;
    expect(w.decision).toMatch(/input keeps its weights in external data/);
    expect(w.copied.tensors).toBe(0);
    expect(w.referenced.map((r) => r.location)).toEqual(['model.onnx.data']);
    expect(w.written.tensors).toBeGreaterThan(0);
    expect(fingerprint(input.data)).toEqual(before);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.onnx', 'model.onnx.data', 'pruned.onnx', 'pruned.onnx.data']);

    const original = loadModel(input.file);
    const pruned = loadModel(path.join(dir, 'pruned.onnx'));
    const where = locations(pruned);
    // Every weight the rewrite kept is read in place: same file, same offset, same length as in the input.
    let kept = 0;
    for (const [name, t] of pruned.graph.initializers) {
      const old = original.graph.initializers.get(name);
      if (where.get(name) === 'model.onnx.data') {
        expect(old?.external).toMatchObject({ location: 'model.onnx.data', offset: t.external!.offset, length: t.external!.length });
        kept++;
      } else if (where.get(name) === 'pruned.onnx.data') {
        expect(old, `${name} is new`).toBeUndefined();
      }
    }
    expect(kept).toBe(w.referenced[0].tensors);
    // The data file holds exactly the written tensors (the rewrite's store became it; 64-byte alignment between).
    expect(fs.statSync(path.join(dir, 'pruned.onnx.data')).size).toBeLessThan(w.written.bytes + 64 * w.written.tensors);
    expect(await outputs(path.join(dir, 'pruned.onnx'))).toEqual(await outputs(rewriteEmbedded(input.file)));
  });

  it('in another folder: unchanged weights are copied (ONNX locations may not leave the folder), outputs the same', async () => {
    const input = externalInput(folder('in'));
    const out = path.join(folder('elsewhere'), 'pruned.onnx');
    const report = rewriteModel(input.file, PRUNE, out);
    const w = report.output!.weights;
    expect(w.referenced).toEqual([]);
    expect(w.copied.tensors).toBeGreaterThan(0);
    expect(w.decision).toMatch(/copied because their data file is not in the output's folder/);
    expect(new Set(locations(loadModel(out)).values())).toEqual(new Set(['embedded', 'pruned.onnx.data']));
    expect(await outputs(out)).toEqual(await outputs(rewriteEmbedded(input.file)));
  });

  it('in a parent folder: the data file is referenced through its subfolder, which loads', async () => {
    const input = externalInput(folder('parent', 'weights'));
    const out = path.join(tmp.dir, 'parent', 'pruned.onnx');
    const report = rewriteModel(input.file, PRUNE, out);
    expect(report.output!.weights.referenced.map((r) => r.location)).toEqual(['weights/model.onnx.data']);
    expect(loadModel(out).externalFiles).toContain(input.data);
  });

  it('self-contained on request: every weight copied into the output\'s own data file', () => {
    const dir = folder('in');
    const input = externalInput(dir);
    const report = rewriteModel(input.file, PRUNE, path.join(dir, 'copy.onnx'), { save: { copyExternal: true } });
    expect(report.output!.weights.referenced).toEqual([]);
    expect(loadModel(path.join(dir, 'copy.onnx')).externalFiles).toEqual([path.join(dir, 'copy.onnx.data')]);
  });

  it('refuses a bad output before it rewrites anything, and leaves no file behind', () => {
    const dir = folder('in');
    const input = externalInput(dir);
    let progress = 0;
    const attempt = () => rewriteModel(input.file, PRUNE, path.join(dir, 'x.onnx'), { save: { dataFile: 'model.onnx.data' }, onProgress: (p) => { if (p.phase !== 'load') progress++; } });
    expect(attempt).toThrow(ModelError);
    expect(attempt).toThrow(/refusing to overwrite the input's external data file 'model.onnx.data'/);
    expect(progress).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.onnx', 'model.onnx.data']);
  });
});

/** The same rewrite kept in memory and embedded (the reference the streamed layouts must match). */
function rewriteEmbedded(input: string): string {
  const out = path.join(folder('embedded'), 'pruned.onnx');
  if (!fs.existsSync(out)) {
    const r = rewriteModel(input, PRUNE, out, { save: { externalData: 'embed' } });
    expect(r.output!.dataFile).toBeUndefined();
  }
  return out;
}

describe('auto decides from the sizes', () => {
  it('a small embedded model stays one file; past the limit its weights go to external data', () => {
    const dir = folder('auto');
    const small = rewriteModel(fixture(SMALL).model, PRUNE, path.join(dir, 'one.onnx'));
    expect(small.output!.dataFile).toBeUndefined();
    expect(small.output!.weights.decision).toMatch(/^auto: \d+ bytes of weights are embedded/);
    expect(fs.readdirSync(dir)).toEqual(['one.onnx']); // the weight store was read back and removed

    const big = rewriteModel(fixture(SMALL).model, PRUNE, path.join(dir, 'two.onnx'), { save: { embedLimit: 100_000 } });
    expect(big.output!.weights.decision).toMatch(/would pass the 100000-byte limit/);
    expect(big.output!.weights.written.bytes).toBeGreaterThan(100_000);
    expect(big.output!.weights.embedded.bytes).toBeLessThan(100_000);
    expect(fs.readdirSync(dir).sort()).toEqual(['one.onnx', 'two.onnx', 'two.onnx.data']);
  });

  it('weights past protobuf\'s 2 GiB go to external data by themselves; embedding them is refused before anything is read', () => {
    const dir = folder('big');
    // 2.4 GB of float32 zeros in a sparse file: nothing is allocated on disk or in memory.
    const synth = buildLlama({ layers: 2, hidden: 2048, heads: 16, kvHeads: 16, headDim: 128, intermediate: 5632, vocab: 128000, externalData: { file: path.join(dir, 'model.onnx.data') } });
    const saved = saveModel(synth.model, path.join(dir, 'model.onnx'));
    expect(saved.weights.referenced).toEqual([{ location: 'model.onnx.data', tensors: synth.model.graph.initializers.size, bytes: synth.dataBytes! - padding(synth.model) }]);
    const model = loadModel(saved.file);
    let read = 0;
    const spy = (...a: unknown[]) => { read++; return a; };
    for (const t of model.graph.initializers.values()) { const orig = t.readInto.bind(t); t.readInto = (s, target) => { spy(); orig(s, target); }; }
    expect(() => saveModel(model, path.join(dir, 'embedded.onnx'), { externalData: 'embed' })).toThrow(/embedding \d+ bytes of weights exceeds protobuf's 2 GiB limit/);
    expect(read).toBe(0);
    expect(fs.readdirSync(dir).sort()).toEqual(['model.onnx', 'model.onnx.data']);
  });
});

/** Alignment gaps between the synthetic model's tensors (the data file's size minus its tensors' bytes). */
function padding(model: Model): number {
  const tensors = [...model.graph.initializers.values()];
  const last = tensors.reduce((a, t) => Math.max(a, t.external!.offset + t.external!.length), 0);
  return last - tensors.reduce((a, t) => a + t.external!.length, 0);
}

describe('the weight store', () => {
  it('is copied, without its dead tensors, when a later rule replaced what an earlier one wrote', () => {
    const dir = folder('chain');
    const out = path.join(dir, 'twice.onnx');
    // The second rule rewrites the same projections again: the first rule's tensors are dead by the save.
    const r = rewriteModel(fixture(SMALL).model, [...PRUNE, { rule: 'prune-heads', params: { heads: { 0: [0] } } }], out, { save: { externalData: 'external' } });
    const live = [...loadModel(out).graph.initializers.values()].filter((t) => t.isExternal);
    const liveBytes = live.reduce((a, t) => a + t.byteLength, 0);
    expect(r.output!.dataBytes).toBeLessThan(liveBytes + 64 * live.length);
    expect(fs.readdirSync(dir).sort()).toEqual(['twice.onnx', 'twice.onnx.data']);
  });

  it('is copied from, never referenced, by a save that does not own it (its file is about to be deleted)', async () => {
    const dir = folder('foreign-store');
    const store = new WeightStore(dir, 'kept.onnx.data');
    let file: string;
    try {
      const { model } = rewriteInMemory(fixture(SMALL).model, PRUNE, { store });
      expect(store.tensors.length).toBeGreaterThan(0);
      file = saveModel(model, path.join(dir, 'kept.onnx'), { externalData: 'external' }).file;
    } finally {
      store.dispose();
    }
    expect(fs.readdirSync(dir).sort()).toEqual(['kept.onnx', 'kept.onnx.data']);
    expect(await outputs(file)).toEqual(await outputs(rewriteEmbedded(fixture(SMALL).model)));
  });

  it('is removed when the rewrite is cancelled, in a rule or while saving', () => {
    for (const stopIn of ['rewrite', 'save'] as const) {
      const dir = folder(`cancel-${stopIn}`);
      let phase = '';
      const attempt = () =>
        rewriteModel(fixture(SMALL).model, PRUNE, path.join(dir, 'never.onnx'), {
          save: { externalData: 'external' },
          onProgress: (p) => { phase = p.phase; },
          checkpoint: () => { if (phase === stopIn) throw new Cancelled(); },
        });
      expect(attempt).toThrow(Cancelled);
      expect(fs.readdirSync(dir), stopIn).toEqual([]);
    }
  });
});

describe('progress', () => {
  it('goes load, analyse, each site of each rule, then the saved bytes up to the total', () => {
    const events: { phase: string; done: number; total: number; message: string }[] = [];
    // Into another folder, so the input's weights are copied: the save has bytes to count.
    const input = externalInput(folder('progress-in'));
    rewriteModel(input.file, PRUNE, path.join(folder('progress'), 'p.onnx'), { onProgress: (p) => events.push(p) });
    const phases = events.map((e) => e.phase).filter((p, i, all) => p !== all[i - 1]);
    expect(phases).toEqual(['load', 'analyse', 'rewrite', 'save']);
    expect(events.filter((e) => e.phase === 'rewrite').map((e) => e.message)).toEqual(['prune-heads: site 0 (1/2)', 'prune-heads: site 1 (2/2)', 'prune-heads: done']);
    const saves = events.filter((e) => e.phase === 'save');
    for (let i = 1; i < saves.length; i++) expect(saves[i].done).toBeGreaterThan(saves[i - 1].done);
    expect(saves.at(-1)!.done).toBe(saves.at(-1)!.total);
  });
});
