// The one visible list of data-driven checks that are known to fail on some shared fixtures, with the reason. A listed
// case runs as an expected failure (`it.fails`): when a fix makes it pass, the suite turns red until the entry is
// removed, so the list cannot silently outlive the gap. Issue 8 ("any export") is resolved only when this is empty.
import { it } from 'vitest';

/** check name → fixture → why it fails today. */
export const KNOWN_GAPS: Record<string, Record<string, string>> = {};

/** Why `check` fails on `fixture` today, or undefined when it is expected to pass. */
export function knownGap(check: string, fixture: string): string | undefined {
  return KNOWN_GAPS[check]?.[fixture];
}

/** `it` for a case expected to pass, `it.fails` for a listed gap. */
export function gapIt(check: string, fixture: string): typeof it | typeof it.fails {
  return knownGap(check, fixture) ? it.fails : it;
}

/** Every listed gap, for the test that keeps the list honest. */
export function allGaps(): { check: string; fixture: string; reason: string }[] {
  return Object.entries(KNOWN_GAPS).flatMap(([check, m]) => Object.entries(m).map(([fixture, reason]) => ({ check, fixture, reason })));
}
