// The structure family: rewrites that change how attention is written, not what it computes.
import { registerRules } from '../registry';
import type { Rule } from '../rule';
import { expandRule } from './expand-rule';

registerRules([expandRule] as Rule<never>[]);
