// The shared-matrix family: share-attn, share-kv, gqa, dictionary.
import { registerRules } from '../registry';
import type { Rule } from '../rule';
import { dictionary } from './dictionary';
import { gqa } from './gqa';
import { shareAttn } from './share-attn';
import { shareKv } from './share-kv';

registerRules([shareAttn, shareKv, gqa, dictionary] as Rule<never>[]);
