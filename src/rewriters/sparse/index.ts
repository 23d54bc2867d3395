// The sparse family: which keys each query may see (methods.md, "Sparse attention").
import { registerRules } from '../registry';
import type { Rule } from '../rule';
import { blockTopkRule } from './block-topk';
import { neighborhood2dRule } from './neighborhood2d';
import { powerRule, sinkRule, stridedRule, windowRule } from './window-family';

registerRules([windowRule, sinkRule, stridedRule, powerRule, neighborhood2dRule, blockTopkRule] as Rule<never>[]);
