// The host's validation of webview messages: every message the dashboard sends passes, anything else is dropped.
import { describe, expect, it } from 'vitest';
import { TABS, type WebviewMessage, isTabId, parseWebviewMessage } from '../../src/protocol';

const valid: WebviewMessage[] = [
  { type: 'ready' },
  { type: 'previewRewrite', steps: [{ rule: 'window', params: { window: 64, impl: 'blocked' }, sites: [0, 2] }] },
  { type: 'addVariant', steps: [{ rule: 'window', params: { window: 64 } }, { rule: 'prune-heads', params: { heads: { 0: [1] } } }], label: 'w64 + prune' },
  { type: 'addVariant', steps: [{ rule: 'block-topk', params: { block: 32, k: 0 } }, { rule: 'share-kv', params: { pairs: [[0, 1]] } }], label: '' },
  { type: 'removeVariant', id: 'v1' },
  { type: 'benchmark' },
  { type: 'compareAccuracy' },
  { type: 'showAttentionMaps', site: 1, pattern: 'window 64' },
  { type: 'showAttentionMaps', site: 0, pattern: null },
  { type: 'export', variant: 'v2' },
  { type: 'cancelTask', id: 't3' },
  { type: 'showLog' },
];

describe('parseWebviewMessage', () => {
  it.each(valid)('accepts %j unchanged', (m) => {
    expect(parseWebviewMessage(JSON.parse(JSON.stringify(m)))).toEqual(m);
  });

  it.each([
    ['not an object', 'ready'],
    ['null', null],
    ['unknown type', { type: 'deleteEverything' }],
    ['steps missing', { type: 'previewRewrite' }],
    ['no steps', { type: 'previewRewrite', steps: [] }],
    ['an empty step', { type: 'previewRewrite', steps: [{}] }],
    ['steps as command-line flags', { type: 'previewRewrite', steps: [['--window', '64']] }],
    ['an unknown rule', { type: 'previewRewrite', steps: [{ rule: 'rm -rf', params: {} }] }],
    ['a parameter the rule does not declare', { type: 'previewRewrite', steps: [{ rule: 'gqa', params: { groups: 2, rows: 4 } }] }],
    ['a required parameter missing', { type: 'previewRewrite', steps: [{ rule: 'sink', params: { sink: 4 } }] }],
    ['a value as text', { type: 'previewRewrite', steps: [{ rule: 'window', params: { window: '64' } }] }],
    ['a window of 0', { type: 'previewRewrite', steps: [{ rule: 'window', params: { window: 0 } }] }],
    ['a choice not offered', { type: 'previewRewrite', steps: [{ rule: 'window', params: { window: 8, impl: 'fast' } }] }],
    ['sites on a rule that names its own', { type: 'previewRewrite', steps: [{ rule: 'share-kv', params: { pairs: [[0, 1]] }, sites: [0] }] }],
    ['no sites', { type: 'previewRewrite', steps: [{ rule: 'window', params: { window: 8 }, sites: [] }] }],
    ['too many steps', { type: 'previewRewrite', steps: Array.from({ length: 33 }, () => ({ rule: 'gqa', params: { groups: 2 } })) }],
    ['label missing', { type: 'addVariant', steps: [{ rule: 'gqa', params: { groups: 2 } }] }],
    ['negative site', { type: 'showAttentionMaps', site: -1, pattern: null }],
    ['fractional site', { type: 'showAttentionMaps', site: 1.5, pattern: null }],
    ['pattern of the wrong type', { type: 'showAttentionMaps', site: 0, pattern: 3 }],
    ['id missing', { type: 'cancelTask' }],
    ['variant of the wrong type', { type: 'export', variant: 2 }],
  ])('drops %s', (_, raw) => {
    expect(parseWebviewMessage(raw)).toBeUndefined();
  });

  it('keeps only the fields it knows and caps the label', () => {
    const m = parseWebviewMessage({ type: 'addVariant', steps: [{ rule: 'gqa', params: { groups: 2 }, note: 'dropped' }], label: 'x'.repeat(500), extra: 'ignored' });
    expect(m).toEqual({ type: 'addVariant', steps: [{ rule: 'gqa', params: { groups: 2 } }], label: 'x'.repeat(200) });
  });

  it('checks the real-data requests: counts within bounds, past lengths as a short list of whole numbers', () => {
    expect(parseWebviewMessage({ type: 'evaluate', seq: 512, windows: 8 })).toEqual({ type: 'evaluate', seq: 512, windows: 8 });
    expect(parseWebviewMessage({ type: 'evaluate', seq: 0, windows: 8 })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'evaluate', seq: 512, windows: 1.5 })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'benchmarkDecode', pasts: [0, 64, 1024] })).toEqual({ type: 'benchmarkDecode', pasts: [0, 64, 1024] });
    expect(parseWebviewMessage({ type: 'benchmarkDecode', pasts: [] })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'benchmarkDecode', pasts: [-1] })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'benchmarkDecode', pasts: '64' })).toBeUndefined();
    expect(parseWebviewMessage({ type: 'compareGeneration', steps: 16 })).toEqual({ type: 'compareGeneration', steps: 16 });
    expect(parseWebviewMessage({ type: 'compareGeneration', steps: 5000 })).toBeUndefined();
    for (const type of ['chooseCalibration', 'clearCalibration', 'computeImportance']) expect(parseWebviewMessage({ type, extra: 1 })).toEqual({ type });
  });

  it('checks the advisor request: one to six density budgets in (0, 1]', () => {
    expect(parseWebviewMessage({ type: 'advise', budgets: [0.25, 0.125, 1], extra: 1 })).toEqual({ type: 'advise', budgets: [0.25, 0.125, 1] });
    for (const budgets of [[], [0], [1.01], [-0.5], ['0.25'], [Number.NaN], Array(7).fill(0.5), 0.25, undefined]) {
      expect(parseWebviewMessage({ type: 'advise', budgets })).toBeUndefined();
    }
  });

  it('checks the advisor request: budgets of one other kind and unit (flops, latency)', () => {
    const flops = [{ kind: 'flops', unit: 'share', value: 0.3 }, { kind: 'flops', unit: 'share', value: 0.2 }];
    expect(parseWebviewMessage({ type: 'advise', budgets: flops })).toEqual({ type: 'advise', budgets: flops });
    expect(parseWebviewMessage({ type: 'advise', budgets: [{ kind: 'latency', unit: 'ms', value: 12, extra: 1 }] })).toEqual({ type: 'advise', budgets: [{ kind: 'latency', unit: 'ms', value: 12 }] });
    for (const budgets of [
      [{ kind: 'flops', unit: 'share', value: 1.5 }],
      [{ kind: 'flops', unit: 'ms', value: 3 }],
      [{ kind: 'latency', unit: 'share', value: 0.5 }, { kind: 'latency', unit: 'ms', value: 5 }],
      [{ kind: 'flops', unit: 'share', value: 0.3 }, { kind: 'latency', unit: 'share', value: 0.5 }],
      [{ kind: 'speed', unit: 'share', value: 0.5 }],
      [0.25, { kind: 'flops', unit: 'share', value: 0.3 }],
    ]) expect(parseWebviewMessage({ type: 'advise', budgets })).toBeUndefined();
  });

  it('accepts a plan step, and refuses one whose plan does not read back to itself', () => {
    const plan = { version: 1, sites: { 0: [{ kind: 'dense' }, { kind: 'window', window: 8 }] } };
    expect(parseWebviewMessage({ type: 'addVariant', steps: [{ rule: 'plan', params: { plan, impl: 'mask' } }], label: 'p' })).toEqual({ type: 'addVariant', steps: [{ rule: 'plan', params: { plan, impl: 'mask' } }], label: 'p' });
    const bad = { version: 1, sites: { 0: [{ kind: 'window', window: -3 }] } };
    expect(parseWebviewMessage({ type: 'addVariant', steps: [{ rule: 'plan', params: { plan: bad, impl: 'mask' } }], label: 'p' })).toBeUndefined();
  });

  it('knows the seven dashboards', () => {
    expect(TABS).toEqual(['overview', 'studio', 'speed', 'accuracy', 'maps', 'heads', 'advisor']);
    expect(TABS.every(isTabId)).toBe(true);
    expect(isTabId('settings')).toBe(false);
    expect(isTabId(0)).toBe(false);
  });
});
