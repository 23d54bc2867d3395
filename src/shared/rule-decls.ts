// Every rewrite rule's parameters, declared once: the CLI's rule flags and `rewrite --help` (src/cli/rewrite.ts), the
// Rewrite studio's forms and the "Rewrite Attention…" prompts (webview, src/extension/commands.ts), and the host's check
// of the steps a dashboard sends (src/protocol.ts) are all derived from this list. A rule registered in
// src/rewriters without a declaration here (or the reverse) fails test/webview/rule-forms.test.ts.
import { IMPL_AUTO } from '../rewriters/sparse/impl-auto';
import type { FieldDecl, FieldValue } from './rule-fields';
import { summarizeChoices, type HeadPlanFile } from './head-plan';

export interface RuleDecl {
  rule: string;
  title: string;
  /** The flag that selects the rule on the command line. */
  flag: string;
  /** Whether the rule takes `--sites` (the others name their sites in their own parameters). */
  perSite: boolean;
  fields: FieldDecl[];
  /** The static sparse pattern the rule imposes, in methods.md notation, for maps and their recall. */
  pattern?: (p: Record<string, FieldValue>) => string;
  /** A short name for a step of this rule, where its fields' texts would be too long to read (a whole plan). */
  label?: (p: Record<string, FieldValue>) => string;
}

const window = (example = '64'): FieldDecl => ({
  key: 'window', flag: '--window', metavar: 'W', label: 'Window W', type: 'int', example, help: 'keys each query sees, itself included',
});

/**
 * How a sparse pattern is realised (methods.md): `mask` is the exact meaning at dense cost, the compute-reducing form
 * (`blocked`, or `gather` for block-topk) computes only what the pattern lets through, and `auto` times the forms that
 * are exact equivalents of the mask form on the target provider at the requested length and keeps the fastest
 * (`rewrite --impl auto --ep P --seq N`; src/orchestrate/impl-auto.ts lists the candidates).
 */
export { IMPL_AUTO };
const impl = (fast: 'blocked' | 'gather', help: string): FieldDecl => ({
  key: 'impl', flag: '--impl', metavar: `mask|${fast}|${IMPL_AUTO}`, label: 'Implementation', type: 'choice', choices: ['mask', fast, IMPL_AUTO], cliOnly: [IMPL_AUTO], default: 'mask', example: fast,
  help: `${help}; ${IMPL_AUTO} times the exact forms on the target provider (--ep) at --seq tokens and keeps the fastest`,
});
const blockedImpl = (what: string) => impl('blocked', `mask adds −∞ outside the pattern (the exact reference; every score is still computed); blocked computes only ${what} (the fast one)`);

export const RULE_DECLS: readonly RuleDecl[] = [
  {
    rule: 'window',
    title: 'Sliding window',
    flag: '--window',
    perSite: true,
    fields: [
      window(),
      blockedImpl('the blocks the window touches'),
    ],
    pattern: (p) => `window ${p.window}`,
  },
  {
    rule: 'sink',
    title: 'Attention sinks + window',
    flag: '--sink',
    perSite: true,
    fields: [{ key: 'sink', flag: '--sink', metavar: 'N', label: 'Sink tokens N', type: 'int', example: '4', help: 'first tokens every query sees' }, window(), blockedImpl('the window\'s blocks and the sink keys')],
    pattern: (p) => `sink ${p.sink} + window ${p.window}`,
  },
  {
    rule: 'strided',
    title: 'Strided + window',
    flag: '--strided',
    perSite: true,
    fields: [{ key: 'stride', flag: '--strided', metavar: 'K', label: 'Stride k', type: 'int', example: '8', help: 'head h also sees keys j ≡ h (mod k)' }, window(), blockedImpl('the window\'s blocks and each head\'s strided keys')],
    pattern: (p) => `strided ${p.stride} + window ${p.window}`,
  },
  {
    rule: 'power',
    title: 'Power-of-two distances + window',
    flag: '--power',
    perSite: true,
    fields: [window(), blockedImpl('the window\'s blocks and the keys at power-of-two distances')],
    pattern: (p) => `power + window ${p.window}`,
  },
  {
    rule: 'neighborhood2d',
    title: '2-D neighborhood (vision)',
    flag: '--neighborhood2d',
    perSite: true,
    fields: [
      { key: 'radius', flag: '--neighborhood2d', metavar: 'R', label: 'Radius r', type: 'int', min: 0, example: '1', help: 'each patch sees the patches within a (2r+1)×(2r+1) square' },
      blockedImpl('each row of patches against the 2r + 1 rows around it'),
    ],
  },
  {
    rule: 'block-topk',
    title: 'Dynamic block top-k',
    flag: '--block-topk',
    perSite: true,
    fields: [
      { key: 'block', flag: '--block-topk', metavar: 'B', label: 'Block size b', type: 'int', example: '32', help: 'keys per block' },
      { key: 'k', flag: '--block-topk', metavar: 'K', label: 'Blocks kept k', type: 'int', min: 0, example: '4', help: 'best-scoring key blocks kept per query block, besides the diagonal block and block 0' },
      impl('gather', 'mask is the exact reference (every score is still computed); gather computes only the kept blocks (the fast one)'),
    ],
  },
  {
    rule: 'share-attn',
    title: 'Share attention probabilities',
    flag: '--share-attn',
    perSite: false,
    fields: [{ key: 'pairs', flag: '--share-attn', metavar: 'I:J[,I:J]', label: 'Pairs i:j', type: 'pairs', example: '0:1', help: 'site j uses site i’s probabilities' }],
  },
  {
    rule: 'share-kv',
    title: 'Share keys and values',
    flag: '--share-kv',
    perSite: false,
    fields: [{ key: 'pairs', flag: '--share-kv', metavar: 'I:J[,I:J]', label: 'Pairs i:j', type: 'pairs', example: '0:1', help: 'site j uses site i’s keys and values' }],
  },
  {
    rule: 'gqa',
    title: 'Grouped-query by mean pooling',
    flag: '--gqa',
    perSite: true,
    fields: [{ key: 'groups', flag: '--gqa', metavar: 'G', label: 'KV groups g', type: 'int', example: '2', help: 'groups of consecutive query heads, each sharing one key/value head: the site gets g KV heads' }],
  },
  {
    rule: 'dictionary',
    title: 'Shared dictionary of projections',
    flag: '--dictionary',
    perSite: false,
    fields: [{ key: 'atoms', flag: '--dictionary', metavar: 'S', label: 'Atoms s', type: 'int', example: '4', help: 'shared matrices per projection kind' }],
  },
  {
    rule: 'prune-heads',
    title: 'Prune heads',
    flag: '--prune-heads',
    perSite: false,
    fields: [{
      key: 'heads', flag: '--prune-heads', metavar: 'SITE:H,H[;SITE:H]', label: 'Heads site:h,h;site:h', type: 'heads', example: '0:1,2;1:0',
      help: 'query heads removed per site; `attention-lens importance MODEL.onnx` ranks the heads by how much the output changes without each',
    }],
  },
  {
    rule: 'drop-attention',
    title: 'Drop attention sub-layers',
    flag: '--drop-attention',
    perSite: false,
    fields: [{ key: 'sites', flag: '--drop-attention', metavar: 'SITE[,SITE]', label: 'Sites', type: 'sites', example: '1', help: 'sites whose attention sub-layer is removed (the residual passes through)' }],
  },
  {
    rule: 'plan',
    title: 'Per-head plan',
    flag: '--plan',
    perSite: false,
    label: (p) => `plan ${Object.entries((p.plan as HeadPlanFile).sites).map(([id, hs]) => `site ${id}: ${summarizeChoices(hs)}`).join('; ')}`,
    fields: [{
      key: 'plan', flag: '--plan', metavar: 'FILE', label: 'Plan (JSON)', type: 'plan',
      example: '{"version":1,"sites":{"0":["dense","window 64","window 64","pruned"]}}',
      help: 'a plan file (the format of src/shared/head-plan.ts, which the advisor writes): per site, one choice per query head: dense, pruned, ' +
        '"window W", "sink N + window W", "strided K + window W", "power + window W" or "block-topk B,K", where W may be a span law ' +
        '"a + b·L" (round(a + b·L) keys, at least 1 and at most L, at the model\'s fixed length or --seq); the CLI also takes the JSON itself',
    }, {
      key: 'impl', flag: '--impl', metavar: 'mask|blocked', label: 'Implementation', type: 'choice', choices: ['mask', 'blocked'], default: 'mask', example: 'blocked',
      help: 'mask: one per-head mask over the dense scores (the exact reference); blocked: heads split into groups by choice, window groups computed blocked and block-topk groups gathered (the fast one)',
    }],
  },
  { rule: 'expand', title: 'Expand fused attention into standard ops', flag: '--expand', perSite: true, fields: [] },
  {
    rule: 'fuse',
    title: 'Fuse into the fastest exact attention operator',
    flag: '--fuse',
    perSite: true,
    fields: [
      {
        key: 'target', flag: '--fuse-target', metavar: 'cpu|cuda', label: 'Target provider', type: 'choice', choices: ['cpu', 'cuda'], default: 'cpu', example: 'cpu',
        help: 'the execution provider whose fastest kernel is chosen (GroupQueryAttention for causal sites on CPU, MultiHeadAttention otherwise)',
      },
      {
        key: 'op', flag: '--fuse-op', metavar: 'auto|MultiHeadAttention|GroupQueryAttention|Attention', label: 'Operator', type: 'choice',
        choices: ['auto', 'MultiHeadAttention', 'GroupQueryAttention', 'Attention'], default: 'auto', example: 'auto',
        help: 'force one operator instead of the choice per site (a site it cannot express is refused with the reason)',
      },
    ],
  },
];

export function declOf(rule: string): RuleDecl | undefined {
  return RULE_DECLS.find((d) => d.rule === rule);
}

/** Flags that take a value: those that carry a field. `--power` and `--expand` only select their rule. */
export function flagTakesValue(flag: string): boolean {
  return RULE_DECLS.some((d) => d.fields.some((f) => f.flag === flag));
}

export function isRuleFlag(flag: string): boolean {
  return RULE_DECLS.some((d) => d.flag === flag || d.fields.some((f) => f.flag === flag));
}
