import { describe, expect, it } from 'vitest';
import { describeHeadChoice, parseHeadChoice, parseHeadPlan, PlanFormatError, serializeHeadPlan } from '../../src/shared/head-plan';

describe('head plan files', () => {
  it('read every entry of the notation and write it back the same', () => {
    const text = ['dense', 'pruned', 'window 64', 'sink 4 + window 64', 'strided 8 + window 32', 'power + window 16', 'block-topk 32,4'];
    expect(text.map((t) => describeHeadChoice(parseHeadChoice(t)))).toEqual(text);
    const plan = parseHeadPlan({ version: 1, seq: 512, sites: { 0: text, 3: ['dense'] } });
    expect(plan.sites[0][3]).toEqual({ kind: 'sink', sink: 4, window: 64 });
    expect(parseHeadPlan(JSON.parse(serializeHeadPlan(plan)))).toEqual(plan);
  });

  it('refuse what they cannot mean, naming the place', () => {
    const bad: [unknown, RegExp][] = [
      [null, /JSON object/],
      [{ version: 2, sites: {} }, /version 2/],
      [{ version: 1, sites: [] }, /"sites" must be an object/],
      [{ version: 1, sites: { x: ['dense'] } }, /site "x"/],
      [{ version: 1, sites: { 0: [] } }, /site 0: expected a non-empty list/],
      [{ version: 1, sites: { 1: ['dense', 'window 0'] } }, /site 1, head 1: "window 0": window must be/],
      [{ version: 1, sites: { 0: ['sparse'] } }, /site 0, head 0: "sparse": expected dense/],
      [{ version: 1, seq: -3, sites: {} }, /"seq"/],
    ];
    for (const [json, msg] of bad) expect(() => parseHeadPlan(json)).toThrow(msg);
    expect(() => parseHeadPlan({ version: 1, sites: { 0: ['x'] } })).toThrow(PlanFormatError);
  });
});
