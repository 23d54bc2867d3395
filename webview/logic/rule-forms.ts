// The rewrite rules as forms: the parameters each takes, checked as a person types them, and turned into the
// command-line flags of `attention-lens rewrite` (src/cli/rewrite.ts), which the host parses with the CLI's own
// parser. Used by the Rewrite studio and by the "Rewrite Attention…" command's prompts. Pure: no DOM, no vscode.

export type FieldKind = 'int' | 'choice' | 'pairs' | 'heads' | 'sites';

export interface FieldSpec {
  key: string;
  label: string;
  kind: FieldKind;
  default: string;
  choices?: string[];
  help: string;
}

export interface RuleForm {
  rule: string;
  title: string;
  fields: FieldSpec[];
  /** Whether the rule takes `--sites` (the others name their sites in their own parameters). */
  perSite: boolean;
}

const W: FieldSpec = { key: 'window', label: 'Window W', kind: 'int', default: '64', help: 'keys each query sees, itself included' };

export const RULE_FORMS: RuleForm[] = [
  {
    rule: 'window',
    title: 'Sliding window',
    perSite: true,
    fields: [W, { key: 'impl', label: 'Implementation', kind: 'choice', default: 'blocked', choices: ['blocked', 'mask'], help: 'blocked computes only the window (the fast one); mask adds −∞ outside it (the exact reference)' }],
  },
  { rule: 'sink', title: 'Attention sinks + window', perSite: true, fields: [{ key: 'sink', label: 'Sink tokens N', kind: 'int', default: '4', help: 'first tokens every query sees' }, W] },
  { rule: 'strided', title: 'Strided + window', perSite: true, fields: [{ key: 'stride', label: 'Stride k', kind: 'int', default: '8', help: 'head h also sees keys j ≡ h (mod k)' }, W] },
  { rule: 'power', title: 'Power-of-two distances + window', perSite: true, fields: [W] },
  { rule: 'neighborhood2d', title: '2-D neighborhood (vision)', perSite: true, fields: [{ key: 'radius', label: 'Radius r', kind: 'int', default: '1', help: 'patches within a (2r+1)×(2r+1) square' }] },
  {
    rule: 'block-topk',
    title: 'Dynamic block top-k',
    perSite: true,
    fields: [
      { key: 'block', label: 'Block size b', kind: 'int', default: '32', help: 'keys per block' },
      { key: 'k', label: 'Blocks kept k', kind: 'int', default: '4', help: 'best-scoring key blocks kept per query block (plus the diagonal and block 0)' },
      { key: 'impl', label: 'Implementation', kind: 'choice', default: 'gather', choices: ['gather', 'mask'], help: 'gather computes only the kept blocks; mask is the exact reference' },
    ],
  },
  { rule: 'share-attn', title: 'Share attention probabilities', perSite: false, fields: [{ key: 'pairs', label: 'Pairs i:j', kind: 'pairs', default: '0:1', help: 'site j uses site i’s probabilities, e.g. 0:1,2:3' }] },
  { rule: 'share-kv', title: 'Share keys and values', perSite: false, fields: [{ key: 'pairs', label: 'Pairs i:j', kind: 'pairs', default: '0:1', help: 'site j uses site i’s keys and values, e.g. 0:1' }] },
  { rule: 'gqa', title: 'Grouped-query by mean pooling', perSite: true, fields: [{ key: 'groups', label: 'KV groups g', kind: 'int', default: '2', help: 'query heads per group share one K/V head' }] },
  { rule: 'dictionary', title: 'Shared dictionary of projections', perSite: false, fields: [{ key: 'atoms', label: 'Atoms s', kind: 'int', default: '4', help: 'shared matrices per projection kind' }] },
  { rule: 'prune-heads', title: 'Prune heads', perSite: false, fields: [{ key: 'heads', label: 'Heads SITE:h,h;SITE:h', kind: 'heads', default: '0:0', help: 'query heads removed per site, e.g. 0:1,2;1:0' }] },
  { rule: 'drop-attention', title: 'Drop attention sub-layers', perSite: false, fields: [{ key: 'sites', label: 'Sites', kind: 'sites', default: '0', help: 'sites whose attention is removed, e.g. 0,1' }] },
  { rule: 'expand', title: 'Expand fused attention into standard ops', perSite: true, fields: [] },
  {
    rule: 'fuse',
    title: 'Fuse attention into one operator (exact)',
    perSite: true,
    fields: [
      { key: 'target', label: 'Execution provider', kind: 'choice', default: 'cpu', choices: ['cpu', 'cuda'], help: 'the operator chosen is the fastest one onnxruntime implements there' },
      {
        key: 'op', label: 'Operator', kind: 'choice', default: 'auto', choices: ['auto', 'GroupQueryAttention', 'MultiHeadAttention', 'Attention'],
        help: 'auto picks per site; a forced operator that cannot compute a site exactly leaves it written out, with the reason',
      },
    ],
  },
];

export function formOf(rule: string): RuleForm | undefined {
  return RULE_FORMS.find((f) => f.rule === rule);
}

export function defaults(form: RuleForm): Record<string, string> {
  return Object.fromEntries(form.fields.map((f) => [f.key, f.default]));
}

const INT = /^\d+$/;
const LIST = /^\d+(,\d+)*$/;
const PAIRS = /^\d+:\d+(,\d+:\d+)*$/;
const HEADS = /^\d+:\d+(,\d+)*(;\d+:\d+(,\d+)*)*;?$/;

/** Why a value is not acceptable, or null. The CLI parser checks again on the host; this is for immediate feedback. */
export function fieldError(field: FieldSpec, raw: string): string | null {
  const v = raw.replace(/\s+/g, '');
  switch (field.kind) {
    case 'int':
      return INT.test(v) && (Number(v) >= 1 || field.key === 'radius') ? null : `${field.label}: a whole number${field.key === 'radius' ? '' : ' of at least 1'}`;
    case 'choice':
      return field.choices?.includes(v) ? null : `${field.label}: one of ${field.choices?.join(', ')}`;
    case 'pairs':
      return PAIRS.test(v) ? null : `${field.label}: pairs like 0:1,2:3`;
    case 'heads':
      return HEADS.test(v) ? null : `${field.label}: like 0:1,2;1:0 (site:heads, sites separated by ;)`;
    case 'sites':
      return LIST.test(v) ? null : `${field.label}: site numbers like 0,1`;
  }
}

export function formErrors(form: RuleForm, values: Record<string, string>): string[] {
  return form.fields.map((f) => fieldError(f, values[f.key] ?? '')).filter((e): e is string => e !== null);
}

/**
 * One step of flags for a rule with its values, narrowed to `sites` (null: every site the rule applies to).
 * Throws on invalid values: callers show formErrors first.
 */
export function toFlags(form: RuleForm, values: Record<string, string>, sites: number[] | null): string[] {
  const errors = formErrors(form, values);
  if (errors.length) throw new Error(errors.join('; '));
  const v = (k: string) => (values[k] ?? '').replace(/\s+/g, '');
  let flags: string[];
  switch (form.rule) {
    case 'window': flags = ['--window', v('window'), '--impl', v('impl')]; break;
    case 'sink': flags = ['--sink', v('sink'), '--window', v('window')]; break;
    case 'strided': flags = ['--strided', v('stride'), '--window', v('window')]; break;
    case 'power': flags = ['--power', '--window', v('window')]; break;
    case 'neighborhood2d': flags = ['--neighborhood2d', v('radius')]; break;
    case 'block-topk': flags = ['--block-topk', `${v('block')},${v('k')}`, '--impl', v('impl')]; break;
    case 'share-attn': flags = ['--share-attn', v('pairs')]; break;
    case 'share-kv': flags = ['--share-kv', v('pairs')]; break;
    case 'gqa': flags = ['--gqa', v('groups')]; break;
    case 'dictionary': flags = ['--dictionary', v('atoms')]; break;
    case 'prune-heads': flags = ['--prune-heads', v('heads').replace(/;$/, '')]; break;
    case 'drop-attention': flags = ['--drop-attention', v('sites')]; break;
    case 'expand': flags = ['--expand']; break;
    case 'fuse': flags = ['--fuse', '--fuse-target', v('target'), '--fuse-op', v('op')]; break;
    default: throw new Error(`no form for rule ${form.rule}`);
  }
  if (form.perSite && sites !== null) {
    if (sites.length === 0) throw new Error('choose at least one site');
    flags.push('--sites', [...sites].sort((a, b) => a - b).join(','));
  }
  return flags;
}

/** The flags as a person would type them after `attention-lens rewrite MODEL.onnx`. */
export function describeSteps(steps: string[][]): string {
  return steps.map((s) => s.map((f) => (/[\s;]/.test(f) ? `'${f}'` : f)).join(' ')).join('  ·  ');
}

/**
 * The static sparse pattern a step imposes, in methods.md notation ("window 64", "sink 4 + window 64"), for drawing it
 * over an attention map and measuring its recall; null for rules that are not a fixed pattern of (i, j, head).
 */
export function patternOfFlags(flags: string[]): string | null {
  const value = (name: string) => {
    const i = flags.indexOf(name);
    return i >= 0 ? flags[i + 1] : undefined;
  };
  const w = value('--window');
  if (w === undefined) return null;
  const sink = value('--sink');
  const stride = value('--strided');
  if (sink !== undefined) return `sink ${sink} + window ${w}`;
  if (stride !== undefined) return `strided ${stride} + window ${w}`;
  if (flags.includes('--power')) return `power + window ${w}`;
  return `window ${w}`;
}

/** The first fixed pattern among a variant's steps. */
export function patternOfSteps(steps: string[][]): string | null {
  for (const s of steps) {
    const p = patternOfFlags(s);
    if (p) return p;
  }
  return null;
}

/** A short name for a variant made from one form: "window 8 (blocked)", "gqa 2", "prune-heads 0:1 @ sites 0". */
export function labelOf(form: RuleForm, values: Record<string, string>, sites: number[] | null): string {
  const flags = toFlags(form, values, null);
  const choices = form.fields.filter((f) => f.kind === 'choice').map((f) => values[f.key]);
  const others = form.fields.filter((f) => f.kind !== 'choice').map((f) => (values[f.key] ?? '').replace(/\s+/g, ''));
  const base = patternOfFlags(flags) ?? `${form.rule} ${others.join(' ')}`.trim();
  return `${base}${choices.length ? ` (${choices.join(', ')})` : ''}${sites ? ` @ sites ${sites.join(',')}` : ''}`;
}
