// The dense baseline the Speed tab adds (src/extension/dense-baseline.ts): the original fused for the provider when
// `fuse` applies, nothing when the model's attention is fused already; and the variant file is written again when
// its steps change (the same id, another provider).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { CoreClient } from '../../src/cli/core-client';
import { denseBaseline } from '../../src/extension/dense-baseline';
import { VariantFiles } from '../../src/extension/runs';
import { DENSE_BASELINE } from '../../src/shared/run-results';
import { fixture } from '../helpers/fixtures';

const ROOT = path.resolve(__dirname, '..', '..');
const MODEL = path.join(ROOT, 'examples', 'demo-llama.onnx');
const scratch = mkdtempSync(path.join(tmpdir(), 'attention-lens-dense-test-'));
const core = new CoreClient(path.join(ROOT, 'dist', 'core-thread.js'));
const signal = new AbortController().signal;

afterAll(() => {
  core.dispose();
  rmSync(scratch, { recursive: true, force: true });
});

describe('the dense baseline', () => {
  it('is the original fused for the provider: GroupQueryAttention on CPU, MultiHeadAttention on CUDA, rewritten when the provider changes', async () => {
    const files = new VariantFiles(core, MODEL, scratch);
    const forms = async (ep: 'cpu' | 'cuda') => {
      const v = (await denseBaseline(core, MODEL, ep, signal))!;
      expect(v.id).toBe(DENSE_BASELINE);
      expect(v.preview.applied.map((a) => a.rule)).toEqual(['fuse']);
      return analyzeModel(await files.get(v, signal)).sites.map((s) => s.form);
    };
    const sites = analyzeModel(MODEL).sites.length;
    expect(await forms('cpu')).toEqual(Array(sites).fill('com.microsoft.GroupQueryAttention'));
    expect(await forms('cuda')).toEqual(Array(sites).fill('com.microsoft.MultiHeadAttention'));
    expect(await forms('cpu')).toEqual(Array(sites).fill('com.microsoft.GroupQueryAttention'));
  });

  it('is not added where every site is fused already', async () => {
    expect(await denseBaseline(core, fixture('fused-gqa').model, 'cpu', signal)).toBeNull();
  });
});
