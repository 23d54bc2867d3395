// Per-head plans (issue 10): the `plan` rule.
import { registerRules } from '../registry';
import type { Rule } from '../rule';
import { planRule } from './plan-rule';

registerRules([planRule] as Rule<never>[]);
