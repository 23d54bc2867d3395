// The structure family's other direction: `fuse` writes written-out attention as fused operators (`expand` undoes it).
import { registerRules } from '../registry';
import type { Rule } from '../rule';
import { fuseRule } from './fuse-rule';

registerRules([fuseRule] as Rule<never>[]);
