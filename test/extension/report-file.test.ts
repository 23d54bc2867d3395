// What an export writes beside the model: names that never collide with the original, and a report that says what
// was written.
import { describe, expect, it } from 'vitest';
import { buildReport, exportFileName, reportPaths } from '../../src/extension/report-file';
import type { SessionSnapshot, Variant } from '../../src/protocol';
import type { RewriteReport } from '../../src/rewriters/pipeline';

const variant = { id: 'v3', label: 'Window 64 (blocked) @ sites 0,1', steps: [{ rule: 'window', params: { window: 64, impl: 'blocked' }, sites: [0, 1] }] } as unknown as Variant;

describe('export files', () => {
  it('names the export after the model and the variant', () => {
    expect(exportFileName('/m/llama.onnx', variant)).toBe('llama.window-64-blocked-sites-0-1.onnx');
    expect(exportFileName('/m/llama.ONNX', { ...variant, label: '***' })).toBe('llama.v3.onnx');
    expect(reportPaths('/out/llama.w.onnx')).toEqual({ json: '/out/llama.w.report.json', html: '/out/llama.w.report.html' });
  });

  it('records the written files and refuses a rewrite that wrote nothing', () => {
    const session = { modelName: 'llama.onnx' } as SessionSnapshot;
    const weights = { decision: 'external', embedded: { tensors: 0, bytes: 0 }, written: { tensors: 2, bytes: 900 }, copied: { tensors: 0, bytes: 0 }, referenced: [] };
    const rewrite = { input: '/m/llama.onnx', seqLen: 1024, seqUnit: 'tokens', applied: [], flopsBefore: 8, flopsAfter: 2, bytesBefore: 4, bytesAfter: 1, warnings: [] } as RewriteReport;
    expect(() => buildReport(session, variant, rewrite, 'ok')).toThrow(/not written/);
    const r = buildReport(session, variant, { ...rewrite, output: { file: '/o/x.onnx', bytes: 100, dataFile: '/o/x.onnx.data', dataBytes: 900, weights } }, 'loads', new Date(0));
    expect(r.exported).toEqual({ variant: 'v3', label: variant.label, steps: variant.steps, model: '/o/x.onnx', dataFile: '/o/x.onnx.data', bytes: 1000, check: 'loads' });
    expect(r.createdAt).toBe('1970-01-01T00:00:00.000Z');
  });
});
