// The studio's and the command's rule forms against the CLI's own parser and the registry: every form's defaults make
// flags the CLI accepts for that rule, and every registered rule has a form.
import { describe, expect, it } from 'vitest';
import { parseRewriteArgs } from '../../src/cli/rewrite';
import { allRules } from '../../src/rewriters/registry';
import '../../src/rewriters/rules';
import { RULE_FORMS, defaults, describeSteps, fieldError, formErrors, formOf, labelOf, patternOfFlags, patternOfSteps, toFlags } from '../../webview/logic/rule-forms';

describe('rule forms', () => {
  it('cover exactly the registered rules', () => {
    const forms = new Set(RULE_FORMS.map((f) => f.rule));
    for (const r of allRules()) expect(forms, `no form for rule ${r.name}`).toContain(r.name);
  });

  it.each(RULE_FORMS.map((f) => [f.rule, f]))('%s: default values make flags the CLI parses into that rule', (_, form) => {
    const flags = toFlags(form, defaults(form), null);
    const parsed = parseRewriteArgs(['m.onnx', ...flags, '-o', 'o.onnx']);
    expect(parsed.requests.map((r) => r.rule)).toEqual([form.rule]);
  });

  it('narrows per-site rules with --sites, sorted', () => {
    const window = formOf('window')!;
    const flags = toFlags(window, { window: '32', impl: 'mask' }, [2, 0]);
    expect(flags).toEqual(['--window', '32', '--impl', 'mask', '--sites', '0,2']);
    expect(parseRewriteArgs(['m.onnx', ...flags, '-o', 'o.onnx']).requests).toEqual([{ rule: 'window', params: { window: 32, impl: 'mask' }, sites: [0, 2] }]);
    expect(() => toFlags(window, { window: '32', impl: 'mask' }, [])).toThrow(/at least one site/);
  });

  it('names the parameters that are wrong', () => {
    const window = formOf('window')!;
    expect(formErrors(window, { window: '0', impl: 'blocked' })).toEqual(['Window W: a whole number of at least 1']);
    expect(formErrors(window, { window: '8', impl: 'fast' })).toEqual(['Implementation: one of blocked, mask']);
    expect(fieldError(formOf('neighborhood2d')!.fields[0], '0')).toBeNull();
    expect(fieldError(formOf('share-kv')!.fields[0], '0-1')).toMatch(/pairs like/);
    expect(fieldError(formOf('prune-heads')!.fields[0], '0:1,2;1:0')).toBeNull();
    expect(fieldError(formOf('prune-heads')!.fields[0], '0:')).toMatch(/site:heads/);
    expect(() => toFlags(window, { window: 'x', impl: 'mask' }, null)).toThrow(/Window W/);
  });

  it('reads the sparse pattern a step draws, in methods.md notation', () => {
    expect(patternOfFlags(['--window', '64', '--impl', 'blocked'])).toBe('window 64');
    expect(patternOfFlags(['--sink', '4', '--window', '64'])).toBe('sink 4 + window 64');
    expect(patternOfFlags(['--strided', '8', '--window', '16'])).toBe('strided 8 + window 16');
    expect(patternOfFlags(['--power', '--window', '16'])).toBe('power + window 16');
    expect(patternOfFlags(['--gqa', '2'])).toBeNull();
    expect(patternOfSteps([['--gqa', '2'], ['--window', '8']])).toBe('window 8');
  });

  it('names variants after what they do', () => {
    expect(labelOf(formOf('window')!, { window: '8', impl: 'blocked' }, null)).toBe('window 8 (blocked)');
    expect(labelOf(formOf('gqa')!, { groups: '2' }, [1])).toBe('gqa 2 @ sites 1');
    expect(labelOf(formOf('sink')!, { sink: '4', window: '64' }, null)).toBe('sink 4 + window 64');
    expect(describeSteps([['--prune-heads', '0:1;1:2'], ['--window', '8']])).toBe("--prune-heads '0:1;1:2'  ·  --window 8");
  });
});
