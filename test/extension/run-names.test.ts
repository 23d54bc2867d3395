// What the extension's runs say to people: scratch files (the variants it writes into its own temporary folder) are
// named as the variant a person made, never by their temporary path; an image model is benchmarked once, at its own
// size, not at every length of the text sweep.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { CoreClient } from '../../src/cli/core-client';
import { VariantFiles, namingPaths, sweepLengths } from '../../src/extension/runs';
import type { SessionSettings, Variant } from '../../src/protocol';
import { FIXTURES } from '../helpers/fixtures';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'examples', 'demo-llama.onnx');
const scratch = mkdtempSync(path.join(tmpdir(), 'attention-lens-names-test-'));
const DEFAULTS: SessionSettings = {
  executionProviders: ['cpu'], sequenceLengths: [64, 128, 256, 512], iterations: 10, minTimeMs: 1000, warmup: 2,
  mapsSequenceLength: 64, calibrationInputs: null, outputFolder: null,
};
const core = new CoreClient(path.join(ROOT, 'dist', 'core-thread.js'));

afterAll(() => {
  core.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

describe('scratch paths in messages', () => {
  it('an error of a run names the variant, not its temporary file', async () => {
    const file = path.join(scratch, 'x', 'model.v1.onnx');
    const e = await namingPaths(new Map([[file, 'variant v1 (window 8)']]), () => Promise.reject(new Error(`cannot open ${file}: no such file`))).catch((x: Error) => x);
    expect((e as Error).message).toBe('cannot open variant v1 (window 8): no such file');
  });

  it('a variant that cannot be written is named as the variant in the failure', async () => {
    const files = new VariantFiles(core, MODEL, scratch);
    const variant = { id: 'v1', label: 'window 8', steps: [{ rule: 'window', params: { window: 8, impl: 'mask' } }] } as unknown as Variant; // no preview: files only write it
    // Something already sits where the variant goes (a folder with a file in it), so the write fails there.
    const where = path.join(scratch, 'v1', 'demo-llama.v1.onnx');
    mkdirSync(where, { recursive: true });
    writeFileSync(path.join(where, 'keep'), '');
    const e = (await files.get(variant).catch((x: Error) => x)) as Error;
    expect(e).toBeInstanceOf(Error);
    expect(e.message).toContain('variant v1 (window 8)');
    expect(e.message, e.message).not.toContain(scratch);
  });
});

describe('sweep lengths', () => {
  it('an image model runs once at its own size; a text model at the sweep lengths its position table allows', () => {
    const vit = analyzeModel(path.join(FIXTURES, 'vit-eager-ts-op17', 'model.onnx'));
    expect(sweepLengths(vit, DEFAULTS)).toEqual({ seqs: [], warning: null });
    const gpt2 = analyzeModel(path.join(FIXTURES, 'gpt2-eager-ts-op17', 'model.onnx'));
    expect(sweepLengths(gpt2, { ...DEFAULTS, sequenceLengths: [32, 64, 128] }).seqs).toEqual([32, 64]);
  });

  it('a model exported with fixed shapes runs at its one length, and the others are named', () => {
    const gpt2 = analyzeModel(path.join(FIXTURES, 'gpt2-eager-ts-op17', 'model.onnx'));
    const fixed = { ...gpt2, model: { ...gpt2.model, inputs: gpt2.model.inputs.map((i) => ({ ...i, shape: [1, 16] })) } };
    expect(sweepLengths(fixed, { ...DEFAULTS, sequenceLengths: [16, 32] })).toEqual({
      seqs: [16],
      warning: 'the model was exported for exactly 16 tokens: lengths 32 of attentionLens.sweep.sequenceLengths were left out; ran at 16',
    });
    expect(sweepLengths(fixed, { ...DEFAULTS, sequenceLengths: [16] })).toEqual({ seqs: [16], warning: null });
  });
});
