import { describe, expect, it } from 'vitest';
import { fixtureNames } from './helpers/fixtures';
import { allGaps } from './known-gaps';

describe('the known-gaps list', () => {
  it('names only fixtures that exist, each with a reason', () => {
    const names = new Set(fixtureNames());
    for (const g of allGaps()) {
      expect(names.has(g.fixture), `${g.check}: ${g.fixture}`).toBe(true);
      expect(g.reason.length).toBeGreaterThan(10);
    }
  });
});
