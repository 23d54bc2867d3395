// The advisor's budget forms (src/shared/budget.ts), read the same by `plan --budget`/`--frontier` and the Advisor tab:
// every kind in both units, read back from its own formatting, and every malformed one refused in one line naming it.
import { describe, expect, it } from 'vitest';
import { BudgetFormatError, describeBudget, formatBudget, isBudget, parseBudget, parseBudgetList, parseBudgetValue, withFurther } from '../../src/shared/budget';

describe('parseBudget', () => {
  it.each([
    ['density=0.25', { kind: 'density', unit: 'share', value: 0.25 }],
    ['density=25%', { kind: 'density', unit: 'share', value: 0.25 }],
    [' Density = 1 ', { kind: 'density', unit: 'share', value: 1 }],
    ['flops=0.3', { kind: 'flops', unit: 'share', value: 0.3 }],
    ['flops=1.5G', { kind: 'flops', unit: 'flops', value: 1.5e9 }],
    ['flops=750m', { kind: 'flops', unit: 'flops', value: 7.5e8 }],
    ['flops=2e3K', { kind: 'flops', unit: 'flops', value: 2e6 }],
    ['flops=12Mflops', { kind: 'flops', unit: 'flops', value: 1.2e7 }],
    ['latency=0.6', { kind: 'latency', unit: 'share', value: 0.6 }],
    ['latency=60%', { kind: 'latency', unit: 'share', value: 0.6 }],
    ['latency=12ms', { kind: 'latency', unit: 'ms', value: 12 }],
    ['latency=0.5s', { kind: 'latency', unit: 'ms', value: 500 }],
  ])('%s', (text, budget) => {
    const b = parseBudget(text);
    expect(b.kind).toBe(budget.kind);
    expect(b.unit).toBe(budget.unit);
    expect(b.value).toBeCloseTo(budget.value, 9);
    expect(isBudget(b)).toBe(true);
    // Its own formatting reads back to it.
    expect(parseBudget(formatBudget(b)).value).toBeCloseTo(b.value, 6);
  });

  it.each([
    ['0.25', /is not a budget; give density=D, flops=F or latency=S/],
    ['speed=0.5', /unknown budget kind "speed"/],
    ['density=0', /density=0: a share must be in \(0, 1\]/],
    ['density=1.5', /density=1\.5: a share must be in \(0, 1\]/],
    ['density=120%', /a share must be in \(0, 1\]/],
    ['density=12ms', /density=12ms: give a share of dense attention/],
    ['flops=2', /flops=2: a share must be in \(0, 1\].*a FLOP count needs its unit, e\.g\. 1\.5G/],
    ['flops=-1G', /flops=-1G: give a share of dense attention's FLOPs in \(0, 1\] or a count with a unit/],
    ['flops=3X', /flops=3X: give a share/],
    ['flops=12ms', /flops=12ms: give a share/],
    ['latency=20', /latency=20: a share must be in \(0, 1\].*a time needs its unit, e\.g\. 12ms/],
    ['latency=5G', /latency=5G: give a share of the dense model's latency in \(0, 1\] or a time with its unit/],
    ['latency=0ms', /latency=0ms: give a share/],
    ['latency=', /latency=: give a share/],
  ])('refuses %j in one line', (text, message) => {
    expect(() => parseBudget(text)).toThrow(BudgetFormatError);
    expect(() => parseBudget(text)).toThrow(message);
    try {
      parseBudget(text);
    } catch (e) {
      expect((e as Error).message.split('\n')).toHaveLength(1);
    }
  });
});

describe('lists and frontiers', () => {
  it('reads the further values in the kind and unit of the first', () => {
    expect(parseBudgetList('flops=0.3, 0.2 flops=0.5').map((b) => b.value)).toEqual([0.3, 0.2, 0.5]);
    expect(parseBudgetList('0.25, 12.5%').map((b) => [b.kind, b.value])).toEqual([['density', 0.25], ['density', 0.125]]);
    expect(parseBudgetList('latency=12ms 20ms 12ms').map((b) => b.value)).toEqual([12, 20]);
    expect(withFurther(parseBudget('flops=1G'), ['500M', '2G']).map((b) => b.value)).toEqual([1e9, 5e8, 2e9]);
  });

  it('refuses a value of another kind or unit, naming both', () => {
    expect(() => parseBudgetList('flops=0.3, 2G')).toThrow(/"2G" is attention FLOPs \(a count\); every budget of one run must be attention FLOPs as a share of the dense model's like the first \(flops=0.3\)/);
    expect(() => parseBudgetList('latency=0.5, density=0.5')).toThrow(/"density=0.5" is density/);
    expect(() => parseBudgetList('latency=12ms, 0.5')).toThrow(/every budget of one run must be latency in milliseconds/);
    expect(() => parseBudgetList('')).toThrow(/give at least one budget/);
    expect(() => parseBudgetList('1 2 3', 2)).toThrow(/at most 2 budgets/);
  });

  it('describes and checks records', () => {
    expect(describeBudget(parseBudget('flops=0.3'))).toBe('attention FLOPs ≤ 0.3 of dense');
    expect(describeBudget(parseBudget('flops=1.5G'))).toBe('attention FLOPs ≤ 1.5G');
    expect(describeBudget(parseBudget('latency=12ms'))).toBe('latency ≤ 12 ms');
    expect(describeBudget(parseBudgetValue('density', '25%'))).toBe('density ≤ 0.25');
    expect(isBudget({ kind: 'flops', unit: 'ms', value: 3 })).toBe(false);
    expect(isBudget({ kind: 'density', unit: 'share', value: 1.2 })).toBe(false);
    expect(isBudget({ kind: 'latency', unit: 'ms', value: Number.NaN })).toBe(false);
  });
});
