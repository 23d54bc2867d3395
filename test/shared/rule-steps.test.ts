// The rule declarations against the registry, the CLI and the host's checks: every registered rule is declared, each
// declared example makes a step the CLI reads back identically from its printed flags and the rule itself accepts, and
// the studio's texts become the step the person typed (non-default values, chosen sites).
import { describe, expect, it } from 'vitest';
import { parseRewriteArgs } from '../../src/cli/rewrite';
import { analyzeModel } from '../../src/analysis/analyze';
import { allRules, getRule } from '../../src/rewriters/registry';
import '../../src/rewriters/rules';
import { RULE_DECLS, declOf } from '../../src/shared/rule-decls';
import { fieldError, formatField, interactiveChoices, parseField } from '../../src/shared/rule-fields';
import {
  type RuleStep, checkStep, commandLine, initialTexts, parseStepFlags, patternOfSteps, rulesHelp, shellWord, stepFlags, stepFromTexts,
  stepLabel, stepsLabel, textErrors,
} from '../../src/shared/rule-steps';
import { FIXTURES } from '../helpers/fixtures';
import * as path from 'node:path';

const exampleStep = (rule: string, sites?: number[]): RuleStep => {
  const d = declOf(rule)!;
  return { rule, params: Object.fromEntries(d.fields.map((f) => [f.key, parseField(f, f.example)])), ...(sites ? { sites } : {}) };
};

describe('rule declarations', () => {
  it('cover exactly the registered rules', () => {
    expect(RULE_DECLS.map((d) => d.rule).sort()).toEqual(allRules().map((r) => r.name).sort());
  });

  it.each(RULE_DECLS.map((d) => [d.rule]))('%s: the example prints as flags the CLI parses back to the same step', (rule) => {
    const d = declOf(rule)!;
    const step = exampleStep(rule, d.perSite ? [0, 2] : undefined);
    const flags = stepFlags(step);
    expect(parseRewriteArgs(['m.onnx', ...flags, '-o', 'o.onnx']).requests).toEqual([step]);
    expect(checkStep(JSON.parse(JSON.stringify(step)))).toEqual(step);
    // Each field's text survives parse → format.
    for (const f of d.fields) expect(formatField(f, parseField(f, f.example))).toBe(f.example);
  });

  it('examples are parameters the rules themselves accept', () => {
    const report = analyzeModel(path.join(FIXTURES, 'llama-eager-ts-op17', 'model.onnx'));
    for (const d of RULE_DECLS) {
      const params = exampleStep(d.rule).params;
      // drop-attention and the sharing rules name sites of this 2-site model; the others are site-independent.
      expect(() => getRule(d.rule)!.validate(params, report), d.rule).not.toThrow();
    }
  });

  it('the CLI keeps the old spellings: --sink with --window, B,K, rules in the order given, left-out defaults', () => {
    expect(parseStepFlags(['--window', '64', '--sink', '4'])).toEqual([{ rule: 'sink', params: { sink: 4, window: 64 } }]);
    expect(parseStepFlags(['--expand', '--block-topk', '4,1'])).toEqual([{ rule: 'expand', params: {} }, { rule: 'block-topk', params: { block: 4, k: 1 } }]);
    expect(parseStepFlags(['--window', '8'], [1])).toEqual([{ rule: 'window', params: { window: 8 }, sites: [1] }]);
    expect(() => parseStepFlags(['--sink', '4'])).toThrow('--sink needs --window W');
    expect(() => parseStepFlags(['--impl', 'mask'])).toThrow('--impl goes with --window or --sink or --strided or --power or --neighborhood2d or --block-topk');
    expect(() => parseStepFlags(['--window', '8', '--block-topk', '4,1', '--impl', 'mask'])).toThrow(/--then/);
    expect(() => parseStepFlags(['--window', '0'])).toThrow("Window W (--window): a whole number of at least 1, got '0'");
  });

  it('rewrite takes steps separated by --then, each with its own --sites', () => {
    const p = parseRewriteArgs(['m.onnx', '--window', '16', '--impl', 'blocked', '--sites', '0,2', '--then', '--prune-heads', '1:0', '--then', '--window', '64', '-o', 'o.onnx']);
    expect(p.requests).toEqual([
      { rule: 'window', params: { window: 16, impl: 'blocked' }, sites: [0, 2] },
      { rule: 'prune-heads', params: { heads: { 1: [0] } } },
      { rule: 'window', params: { window: 64 } },
    ]);
    expect(() => parseRewriteArgs(['m.onnx', '--window', '16', '--then', '-o', 'o.onnx'])).toThrow(/step 2 has no rule/);
  });

  it('the printed command is one line a shell runs: steps joined by --then, quoted where needed', () => {
    const steps: RuleStep[] = [
      { rule: 'window', params: { window: 16, impl: 'blocked' }, sites: [0, 2] },
      { rule: 'prune-heads', params: { heads: { 0: [1, 2], 1: [0] } } },
    ];
    const line = commandLine('/my models/m.onnx', steps, 'out.onnx');
    expect(line).toBe("attention-lens rewrite '/my models/m.onnx' --window 16 --impl blocked --sites 0,2 --then --prune-heads '0:1,2;1:0' -o out.onnx");
    expect(line).not.toContain('·');
    // What the shell would pass: unquote the words and parse them back.
    const words = line.match(/'[^']*'|\S+/g)!.map((w) => w.replace(/^'|'$/g, ''));
    expect(parseRewriteArgs(words.slice(2)).requests).toEqual(steps);
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
  });

  it('the studio texts become the step typed: non-default values, the chosen sites, errors named', () => {
    const sink = declOf('sink')!;
    expect(initialTexts(sink)).toEqual({ sink: '4', window: '64', impl: 'mask' });
    expect(stepFromTexts(sink, { sink: '2', window: '16', impl: 'mask' }, [2, 0])).toEqual({ rule: 'sink', params: { sink: 2, window: 16, impl: 'mask' }, sites: [0, 2] });
    expect(() => stepFromTexts(sink, { sink: '2', window: '16', impl: 'blocked' }, [])).toThrow('choose at least one site');
    expect(textErrors(sink, { sink: 'x', window: '0', impl: 'mask' })).toEqual([
      "Sink tokens N (--sink): a whole number of at least 1, got 'x'",
      "Window W (--window): a whole number of at least 1, got '0'",
    ]);
    expect(fieldError(declOf('neighborhood2d')!.fields[0], '0')).toBeNull();
    expect(fieldError(declOf('prune-heads')!.fields[0], '0:')).toMatch(/site:heads/);
  });

  it('names steps and variants after what they do; patterns for the maps', () => {
    expect(stepLabel({ rule: 'window', params: { window: 8, impl: 'blocked' } })).toBe('window 8 (blocked)');
    expect(stepLabel({ rule: 'gqa', params: { groups: 2 }, sites: [1] })).toBe('gqa 2 @ sites 1');
    expect(stepsLabel([{ rule: 'sink', params: { sink: 4, window: 64 } }, { rule: 'expand', params: {} }])).toBe('sink 4 + window 64 + expand');
    expect(patternOfSteps([{ rule: 'gqa', params: { groups: 2 } }, { rule: 'strided', params: { stride: 8, window: 16 } }])).toBe('strided 8 + window 16');
    expect(patternOfSteps([{ rule: 'gqa', params: { groups: 2 } }])).toBeNull();
  });

  it('rewrite --help lists every rule flag with its default', () => {
    const help = rulesHelp();
    for (const d of RULE_DECLS) {
      expect(help).toContain(d.flag);
      for (const f of d.fields) {
        expect(help).toContain(f.flag);
        if (f.default) expect(help).toContain(`default ${f.default}`);
      }
    }
  });
});

describe('choices only the command line can carry out', () => {
  it('impl auto is offered on the command line but not in the studio, and a dashboard step holding it is refused', () => {
    const impl = declOf('window')!.fields.find((f) => f.key === 'impl')!;
    expect(impl.choices).toContain('auto');
    expect(interactiveChoices(impl)).toEqual(['mask', 'blocked']);
    expect(parseRewriteArgs(['m.onnx', '--window', '64', '--impl', 'auto', '-o', 'o.onnx']).requests[0].params).toMatchObject({ impl: 'auto' });
    expect(checkStep({ rule: 'window', params: { window: 64, impl: 'auto' } })).toMatch(/impl auto is chosen by timing on the command line.*mask, blocked/);
    expect(checkStep({ rule: 'window', params: { window: 64, impl: 'blocked' } })).toMatchObject({ rule: 'window' });
  });
});
