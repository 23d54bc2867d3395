// Span laws in plan files (issue 10, MoA's elastic spans): the notation reads and writes back exactly, resolves by the
// documented rounding and clamping, and every way of getting it wrong is refused in one line naming the place.
import { describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import { validatePlan } from '../../src/rewriters/plan/validate';
import { describeChoiceAt, resolvePlan, resolveSpan } from '../../src/rewriters/plan/span';
import { describeHeadChoice, parseHeadChoice, parseHeadPlan, planJson, serializeHeadPlan, type HeadPlanFile } from '../../src/shared/head-plan';
import { fixture } from '../helpers/fixtures';

describe('span laws in the plan notation', () => {
  it('read every form and write it back to the same plan', () => {
    const cases: [string, unknown, string][] = [
      ['window 16 + 0.125·L', { kind: 'window', window: { a: 16, b: 0.125 } }, 'window 16 + 0.125·L'],
      ['window -32+0.1875*L', { kind: 'window', window: { a: -32, b: 0.1875 } }, 'window -32 + 0.1875·L'],
      ['window 0.25 L', { kind: 'window', window: { a: 0, b: 0.25 } }, 'window 0 + 0.25·L'],
      ['Sink 4 + Window 8 + 0.0625·L', { kind: 'sink', sink: 4, window: { a: 8, b: 0.0625 } }, 'sink 4 + window 8 + 0.0625·L'],
      ['strided 32 + window 1.5 + 1e-3·L', { kind: 'strided', stride: 32, window: { a: 1.5, b: 0.001 } }, 'strided 32 + window 1.5 + 0.001·L'],
      ['power + window 3 + 0·L', { kind: 'power', window: { a: 3, b: 0 } }, 'power + window 3 + 0·L'],
    ];
    for (const [text, choice, written] of cases) {
      expect(parseHeadChoice(text), text).toEqual(choice);
      expect(describeHeadChoice(parseHeadChoice(text)), text).toBe(written);
    }
    // A law the advisor fits from two lengths (b = 48/384) reads back to the same doubles.
    const b = 48 / 384;
    const plan: HeadPlanFile = { version: 1, seq: 512, lengths: [128, 512], sites: { 0: [{ kind: 'window', window: { a: 16 - b * 128, b } }, { kind: 'window', window: 8 }] } };
    expect(parseHeadPlan(JSON.parse(serializeHeadPlan(plan)))).toEqual(plan);
    expect(planJson(plan)).toEqual({ version: 1, seq: 512, lengths: [128, 512], sites: { 0: ['window 0 + 0.125·L', 'window 8'] } });
  });

  it('resolve as round(a + b·L) = floor(a + b·L + 0.5), clamped to [1, L]; a fixed window stays as it is', () => {
    expect(resolveSpan({ a: 0, b: 0.125 }, 512)).toBe(64);
    expect(resolveSpan({ a: -32, b: 0.1875 }, 256)).toBe(16);
    expect(resolveSpan({ a: -32, b: 0.1875 }, 512)).toBe(64);
    expect(resolveSpan({ a: 0.5, b: 0 }, 100)).toBe(1); // halves round up
    expect(resolveSpan({ a: 2.5, b: 0 }, 100)).toBe(3);
    expect(resolveSpan({ a: 2.4999, b: 0 }, 100)).toBe(2);
    expect(resolveSpan({ a: -100, b: 0.1 }, 512)).toBe(1); // clamped below
    expect(resolveSpan({ a: 0, b: 2 }, 300)).toBe(300); // clamped above
    expect(resolveSpan(1000, 300)).toBe(1000);
    const c = parseHeadChoice('sink 4 + window 0 + 0.25·L');
    expect(describeChoiceAt(c, 256)).toBe('sink 4 + window 0 + 0.25·L (64 at L = 256)');
    expect(describeChoiceAt(parseHeadChoice('window 64'), 256)).toBe('window 64');
    const plan = parseHeadPlan({ version: 1, sites: { 1: ['window 0 + 0.25·L', 'dense', 'strided 8 + window 4 + 0.5·L', 'block-topk 16,1'] } });
    expect(resolvePlan(plan, 128).sites[1]).toEqual([
      { kind: 'window', window: 32 }, { kind: 'dense' }, { kind: 'strided', stride: 8, window: 68 }, { kind: 'block-topk', block: 16, k: 1 },
    ]);
  });

  it('refuse a malformed law in one line naming the site and head', () => {
    const bad: [string, RegExp][] = [
      ['window 1 - 0.5·L', /site 0, head 0: "window 1 - 0.5·L": the span law's b is -0.5: a span may not shrink as the length grows \(b ≥ 0\)$/],
      ['window 1e999 + 0·L', /"window 1e999 \+ 0·L": the span law's a must be a finite number, got null$/],
      ['window 2 + 1e999·L', /the span law's b must be a finite number/],
      ['window x + 0.1·L', /the window must be a whole number or a span law "a \+ b·L" \(e\.g\. "16 \+ 0\.125·L"\), got "x \+ 0\.1·l"$/],
      ['window 2.5', /the window must be a whole number or a span law/],
      ['window NaN·L', /the window must be a whole number or a span law/],
      ['sink 4 + window 0.5 + L·2', /the window must be a whole number or a span law/],
      ['window -4', /"window -4": window must be a whole number >= 1$/],
    ];
    for (const [entry, msg] of bad) {
      let message = '';
      try {
        parseHeadPlan({ version: 1, sites: { 0: [entry] } });
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message, entry).toMatch(msg);
      expect(message).not.toContain('\n');
    }
    expect(() => parseHeadPlan({ version: 1, lengths: [256, 0], sites: { 0: ['dense'] } })).toThrow(/"lengths" must be a non-empty list of whole numbers >= 1/);
  });

  it('the rule refuses laws given as objects that are not finite, or shrink, naming the head', () => {
    const report = analyzeModel(fixture('llama-eager-ts-op17').model);
    const refusal = (window: unknown) => {
      const dense = { kind: 'dense' };
      const plan = { version: 1, sites: { 0: [dense, dense, { kind: 'window', window }, dense] } } as unknown as HeadPlanFile;
      try {
        validatePlan({ plan }, report);
      } catch (e) {
        return (e as Error).message;
      }
      return 'accepted';
    };
    expect(refusal({ a: Number.NaN, b: 0.1 })).toBe("plan: site 0, head 2 (window NaN + 0.1·L): the span law's a must be a finite number, got null");
    expect(refusal({ a: 4, b: Number.POSITIVE_INFINITY })).toBe("plan: site 0, head 2 (window 4 + Infinity·L): the span law's b must be a finite number, got null");
    expect(refusal({ a: 4, b: -0.25 })).toMatch(/^plan: site 0, head 2 \(window 4 \+ -0\.25·L\): the span law's b is -0\.25: a span may not shrink/);
    expect(refusal({ a: '4', b: 0.25 })).toMatch(/the span law's a must be a finite number, got "4"$/);
    expect(refusal(2.5)).toBe('plan: site 0, head 2 (window 2.5): the window must be a whole number >= 1, got 2.5');
    expect(refusal({ a: 4, b: 0.25 })).toBe('accepted');
  });
});
