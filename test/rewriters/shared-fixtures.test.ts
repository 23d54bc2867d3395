// Every shared-matrix rule on every shared fixture it applies to: the rewritten model loads in onnxruntime CPU
// (through the runtime worker) and runs on synthesized inputs with finite outputs. Where a rule does not apply, the
// refusal is a RuleError with the expected reason, never a broken model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gapIt } from '../known-gaps';
import type { SiteInfo } from '../../src/analysis/report/types';
import type { RuleRequest } from '../../src/rewriters/pipeline';
import { RuleError } from '../../src/rewriters/rule';
import type { RuntimeClient } from '../../src/runtime/client';
import { toFloat64 } from '../../src/runtime/tensor';
import { startClient } from '../runtime/helpers';
import { fixture, fixtureNames, rewriteFixture, scratch, sitesOf } from './shared-prune-helpers';

let client: RuntimeClient;
let close: () => Promise<void>;
let tmp: { dir: string; cleanup: () => void };
beforeAll(async () => {
  ({ client, close } = await startClient());
  tmp = scratch('shared-fixtures');
});
afterAll(async () => {
  await close();
  tmp.cleanup();
});

/** The first two sites of the same kind and causality: the pair a user would try first. */
function firstPair(sites: SiteInfo[]): [number, number] | undefined {
  for (const a of sites) for (const b of sites) if (a.id < b.id && a.kind === b.kind && a.causal === b.causal) return [a.id, b.id];
  return undefined;
}

/**
 * Fixtures where no two sites share kind and causality (nn.Transformer's encoder self, decoder causal self and
 * cross-attention): sharing probabilities is refused for the first two sites, with a reason that names the difference.
 */
const NO_PAIR = /-attention and site|causal/;

/** Fixtures where a rule is refused by design, and the reason it gives. */
const REFUSED: Record<string, Record<string, RegExp>> = {
  'share-kv': { 'fused-contrib_attention': /packed Attention computes K and V inside the operator/ },
};

function requests(rule: string, sites: SiteInfo[]): RuleRequest[] {
  switch (rule) {
    case 'gqa': return [{ rule, params: { groups: sites[0].heads! % 2 === 0 ? 2 : 1 } }];
    case 'dictionary': return [{ rule, params: { atoms: 1 } }];
    default: return [{ rule, params: { pairs: [firstPair(sites) ?? [sites[0].id, sites[1].id]] } }];
  }
}

describe.each(['gqa', 'dictionary', 'share-kv', 'share-attn'])('%s', (rule) => {
  for (const name of fixtureNames()) gapIt(rule, name)(name, async () => {
    const sites = sitesOf(fixture(name).model);
    // Sharing probabilities needs the same mask; sharing K and V does not, so share-kv takes the first two sites.
    const expected = REFUSED[rule]?.[name] ?? (rule === 'share-attn' && !firstPair(sites) ? NO_PAIR : undefined);
    let file: string;
    try {
      ({ file } = rewriteFixture(name, requests(rule, sites), tmp.dir, rule));
    } catch (e) {
      if (!expected) throw e;
      expect(e).toBeInstanceOf(RuleError);
      expect((e as Error).message).toMatch(expected);
      return;
    }
    expect(expected, `${rule} was expected to refuse ${name}`).toBeUndefined();
    const r = await client.run({ model: file, settings: { ep: 'cpu' } });
    expect(r.fed.synthesized.length).toBe(Object.keys(r.fed.shapes).length);
    for (const [out, t] of Object.entries(r.outputs)) {
      const v = toFloat64(t);
      expect(v.length, `${out} is empty`).toBeGreaterThan(0);
      expect(v.every(Number.isFinite), `${out} has non-finite values`).toBe(true);
    }
  });
});
