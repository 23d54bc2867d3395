// The host's validation of webview messages: every message the dashboard sends passes, anything else is dropped.
import { describe, expect, it } from 'vitest';
import { TABS, type WebviewMessage, isTabId, parseWebviewMessage } from '../../src/protocol';

const valid: WebviewMessage[] = [
  { type: 'ready' },
  { type: 'previewRewrite', steps: [['--window', '64', '--impl', 'blocked']] },
  { type: 'addVariant', steps: [['--window', '64'], ['--prune-heads', '0:1']], label: 'w64 + prune' },
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
    ['an empty step', { type: 'previewRewrite', steps: [[]] }],
    ['flags that are not strings', { type: 'previewRewrite', steps: [['--window', 64]] }],
    ['too many steps', { type: 'previewRewrite', steps: Array.from({ length: 33 }, () => ['--gqa', '2']) }],
    ['label missing', { type: 'addVariant', steps: [['--gqa', '2']] }],
    ['negative site', { type: 'showAttentionMaps', site: -1, pattern: null }],
    ['fractional site', { type: 'showAttentionMaps', site: 1.5, pattern: null }],
    ['pattern of the wrong type', { type: 'showAttentionMaps', site: 0, pattern: 3 }],
    ['id missing', { type: 'cancelTask' }],
    ['variant of the wrong type', { type: 'export', variant: 2 }],
  ])('drops %s', (_, raw) => {
    expect(parseWebviewMessage(raw)).toBeUndefined();
  });

  it('keeps only the fields it knows and caps the label', () => {
    const m = parseWebviewMessage({ type: 'addVariant', steps: [['--gqa', '2']], label: 'x'.repeat(500), extra: 'ignored' });
    expect(m).toEqual({ type: 'addVariant', steps: [['--gqa', '2']], label: 'x'.repeat(200) });
  });

  it('knows the five dashboards', () => {
    expect(TABS).toEqual(['overview', 'studio', 'speed', 'accuracy', 'maps']);
    expect(TABS.every(isTabId)).toBe(true);
    expect(isTabId('settings')).toBe(false);
    expect(isTabId(0)).toBe(false);
  });
});
