// The pruning family: prune-heads and drop-attention.
import { registerRules } from '../registry';
import type { Rule } from '../rule';
import { dropAttention } from './drop-attention';
import { pruneHeads } from './prune-heads';

registerRules([pruneHeads, dropAttention] as Rule<never>[]);
