// The one rule that names a language model's score (src/shared/score-unit.ts): bits per byte for byte-level text, bits
// per token otherwise, used by the Accuracy tab's evaluation and the Advisor tab's frontier alike.
import { describe, expect, it } from 'vitest';
import { bitsUnit, inBitsUnit } from '../../src/shared/score-unit';
import { unitOf } from '../../webview/logic/evaluate';

describe('bitsUnit / inBitsUnit', () => {
  it('names the score by how the tokens were made', () => {
    expect(bitsUnit('bytes (a byte-level model)')).toBe('bits per byte');
    expect(bitsUnit('tokenised with tokenizer.json')).toBe('bits per token');
    // The Accuracy tab's rule is this one.
    expect(unitOf({ how: 'bytes (a byte-level model)' })).toBe(bitsUnit('bytes (a byte-level model)'));
  });
  it('renames bits per token only, at the start of a score or an objective; other scores and unknown text stay', () => {
    const how = 'bytes (a byte-level model)';
    expect(inBitsUnit('bits per token', how)).toBe('bits per byte');
    expect(inBitsUnit('bits per token on a.py: 16 evaluation windows of 64', how)).toBe('bits per byte on a.py: 16 evaluation windows of 64');
    expect(inBitsUnit('bits per token', 'tokenised with tokenizer.json')).toBe('bits per token');
    expect(inBitsUnit('KL (nats)', how)).toBe('KL (nats)');
    expect(inBitsUnit('outputs against the original\'s, bits per token', how)).toBe('outputs against the original\'s, bits per token');
    expect(inBitsUnit('bits per token', null)).toBe('bits per token');
  });
});
