// Rewrite steps: one rule with its parsed parameters and, for per-site rules, its sites. The studio makes them from
// form fields, the CLI from flags, the protocol carries them as they are, the core thread hands them to the pipeline
// (a step is the pipeline's RuleRequest), and they print back as a command that runs the same rewrite. Everything
// comes from the declarations in rule-decls.ts. Pure: no DOM, no Node, no vscode.
import { type RuleDecl, RULE_DECLS, declOf, flagTakesValue } from './rule-decls';
import { type FieldDecl, type FieldValue, formatField, interactiveChoices, isFieldValue, parseField } from './rule-fields';

export interface RuleStep {
  rule: string;
  params: Record<string, FieldValue>;
  /** Site ids as the input model's analysis numbers them; absent: every site the rule applies to. */
  sites?: number[];
}

/** Separates steps on the command line; each step has its own `--sites`. */
export const THEN = '--then';

/** The texts a form starts with: each field's default, or its example when it has none. */
export function initialTexts(decl: RuleDecl): Record<string, string> {
  return Object.fromEntries(decl.fields.map((f) => [f.key, f.default ?? f.example]));
}

/** Problems with the texts of a form, one per field, for showing beside it. */
export function textErrors(decl: RuleDecl, texts: Record<string, string>): string[] {
  const errors: string[] = [];
  for (const f of decl.fields) {
    try {
      parseField(f, texts[f.key] ?? '');
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  return errors;
}

/**
 * The step a form describes: every field as typed (defaults included, so the step says what runs), narrowed to
 * `sites` (null: every site). Throws with the problems when a text does not parse or no site is chosen.
 */
export function stepFromTexts(decl: RuleDecl, texts: Record<string, string>, sites: number[] | null): RuleStep {
  const errors = textErrors(decl, texts);
  if (errors.length) throw new Error(errors.join('; '));
  const params = Object.fromEntries(decl.fields.map((f) => [f.key, parseField(f, texts[f.key] ?? '')]));
  const step: RuleStep = { rule: decl.rule, params };
  if (decl.perSite && sites !== null) {
    if (sites.length === 0) throw new Error('choose at least one site, or tick "All sites"');
    step.sites = [...new Set(sites)].sort((a, b) => a - b);
  }
  return step;
}

/** The form texts of a step (for editing it again). */
export function textsOfStep(decl: RuleDecl, step: RuleStep): Record<string, string> {
  const texts = initialTexts(decl);
  for (const f of decl.fields) if (step.params[f.key] !== undefined) texts[f.key] = formatField(f, step.params[f.key]);
  return texts;
}

/** Fields grouped by the flag that carries them, in declaration order (`--block-topk` carries B and K). */
function flagGroups(decl: RuleDecl): [string, FieldDecl[]][] {
  const groups = new Map<string, FieldDecl[]>();
  for (const f of decl.fields) groups.set(f.flag, [...(groups.get(f.flag) ?? []), f]);
  return [...groups];
}

/** The step as `attention-lens rewrite` flags: `--window 16 --impl blocked --sites 0,2`. */
export function stepFlags(step: RuleStep): string[] {
  const decl = declOf(step.rule);
  if (!decl) throw new Error(`unknown rule '${step.rule}'`);
  const groups = flagGroups(decl);
  const flags: string[] = [];
  // The selecting flag first; a flag-only rule (`--power`) has no group of its own.
  if (!groups.some(([flag]) => flag === decl.flag)) flags.push(decl.flag);
  for (const [flag, fields] of [...groups].sort(([a], [b]) => Number(b === decl.flag) - Number(a === decl.flag))) {
    if (fields.some((f) => step.params[f.key] === undefined)) continue; // left out: the rule's default applies
    flags.push(flag, fields.map((f) => formatField(f, step.params[f.key])).join(','));
  }
  if (step.sites) flags.push('--sites', step.sites.join(','));
  return flags;
}

/** A word for a POSIX shell: as it is when it is safe, else single-quoted. */
export function shellWord(s: string): string {
  return /^[A-Za-z0-9_\-.,:/=@+%]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command that makes the same model from a terminal: the steps joined by `--then`, quoted for a shell. */
export function commandLine(model: string, steps: RuleStep[], output: string): string {
  const words = ['attention-lens', 'rewrite', model, ...steps.flatMap((s, i) => [...(i ? [THEN] : []), ...stepFlags(s)]), '-o', output];
  return words.map(shellWord).join(' ');
}

/**
 * Rule flags of one step (no `--then`, no `-o`) → the steps they stand for. Several rules may share a step
 * (`--expand --block-topk 4,1`), in the order their flags first appear; `--window` goes with `--sink`, `--strided`
 * or `--power` when one of those is given, and makes the window rule otherwise. `sites` narrows the per-site rules.
 */
export function parseStepFlags(flags: string[], sites?: number[]): RuleStep[] {
  const given = new Map<string, { value: string | undefined; at: number }>();
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i];
    if (!RULE_DECLS.some((d) => d.flag === flag || d.fields.some((f) => f.flag === flag))) throw new Error(`unknown rule option ${flag}`);
    if (given.has(flag)) throw new Error(`${flag} is given twice in one step; start another step with ${THEN}`);
    let value: string | undefined;
    if (flagTakesValue(flag)) {
      value = flags[++i];
      if (value === undefined || (value.startsWith('--') && value !== '--')) throw new Error(`${flag} needs a value`);
    }
    given.set(flag, { value, at: i });
  }
  let chosen = RULE_DECLS.filter((d) => given.has(d.flag));
  // `--window` with `--sink` is the sink rule's window, not a window rule of its own.
  chosen = chosen.filter((d) => !chosen.some((o) => o !== d && o.flag !== d.flag && o.fields.some((f) => f.flag === d.flag)));
  for (const flag of given.keys()) {
    const owners = chosen.filter((d) => d.flag === flag || d.fields.some((f) => f.flag === flag));
    if (owners.length === 0) {
      const could = RULE_DECLS.filter((d) => d.fields.some((f) => f.flag === flag)).map((d) => d.flag);
      throw new Error(`${flag} goes with ${could.join(' or ')}`);
    }
    if (owners.length > 1) throw new Error(`${flag} would belong to ${owners.map((d) => d.flag).join(' and ')}; give each its own step with ${THEN}`);
  }
  const first = (d: RuleDecl) => Math.min(...[d.flag, ...d.fields.map((f) => f.flag)].map((f) => given.get(f)?.at ?? Infinity));
  return chosen.sort((a, b) => first(a) - first(b)).map((decl) => {
    const params: Record<string, FieldValue> = {};
    for (const [flag, fields] of flagGroups(decl)) {
      const text = given.get(flag)?.value;
      if (text === undefined) {
        const required = fields.filter((f) => f.default === undefined);
        if (required.length) throw new Error(`${decl.flag} needs ${flag} ${required.map((f) => f.metavar).join(',')}`);
        continue;
      }
      const parts = fields.length > 1 ? text.split(',') : [text];
      if (parts.length !== fields.length) throw new Error(`${flag} takes ${fields.map((f) => f.metavar).join(',')}, got '${text}'`);
      fields.forEach((f, i) => (params[f.key] = parseField(f, parts[i])));
    }
    return { rule: decl.rule, params, ...(decl.perSite && sites ? { sites } : {}) };
  });
}

/** A short name for a step: "window 8 (blocked)", "gqa 2 @ sites 1", "sink 4 + window 64 (…)". */
export function stepLabel(step: RuleStep): string {
  const decl = declOf(step.rule);
  if (!decl) return step.rule;
  const text = (f: FieldDecl) => (step.params[f.key] === undefined ? undefined : formatField(f, step.params[f.key]));
  const choices = decl.fields.filter((f) => f.type === 'choice').map(text).filter((t): t is string => t !== undefined);
  const others = decl.fields.filter((f) => f.type !== 'choice').map(text).filter((t): t is string => t !== undefined);
  const base = decl.label ? decl.label(step.params) : decl.pattern ? decl.pattern(step.params) : [step.rule, ...others].join(' ');
  return `${base}${choices.length ? ` (${choices.join(', ')})` : ''}${step.sites ? ` @ sites ${step.sites.join(',')}` : ''}`;
}

/** A variant's name from its steps, for when the person gives none. */
export function stepsLabel(steps: RuleStep[]): string {
  return steps.map(stepLabel).join(' + ');
}

/** The first fixed sparse pattern among the steps (methods.md notation), or null. */
export function patternOfSteps(steps: RuleStep[]): string | null {
  for (const s of steps) {
    const p = declOf(s.rule)?.pattern?.(s.params);
    if (p) return p;
  }
  return null;
}

/**
 * An untrusted step (a webview message, a saved state) checked against the declarations: a known rule, only its
 * fields, each a value its parser could have made, required ones present, sites only on per-site rules. Returns the
 * step rebuilt from those checked parts, or why it is refused.
 */
export function checkStep(raw: unknown): RuleStep | string {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return 'a step must be an object';
  const r = raw as Record<string, unknown>;
  const decl = typeof r.rule === 'string' ? declOf(r.rule) : undefined;
  if (!decl) return `unknown rule ${JSON.stringify(r.rule)}`;
  if (typeof r.params !== 'object' || r.params === null || Array.isArray(r.params)) return `${decl.rule}: params must be an object`;
  const given = r.params as Record<string, unknown>;
  const params: Record<string, FieldValue> = {};
  for (const key of Object.keys(given)) if (!decl.fields.some((f) => f.key === key)) return `${decl.rule}: no parameter '${key}'`;
  for (const f of decl.fields) {
    const v = given[f.key];
    if (v === undefined) {
      if (f.default === undefined) return `${decl.rule}: '${f.key}' is required`;
      continue;
    }
    if (!isFieldValue(f, v)) return `${decl.rule}: '${f.key}' is not ${f.type === 'choice' ? `one of ${f.choices?.join(', ')}` : `a valid ${f.type}`}`;
    if (f.cliOnly?.includes(v as string)) return `${decl.rule}: ${f.key} ${v as string} is chosen by timing on the command line (attention-lens rewrite ${f.flag} ${v as string}); choose one of ${interactiveChoices(f).join(', ')} here`;
    params[f.key] = v;
  }
  const step: RuleStep = { rule: decl.rule, params };
  if (r.sites !== undefined) {
    const sites = r.sites;
    if (!decl.perSite) return `${decl.rule} names its sites in its own parameters`;
    if (!Array.isArray(sites) || sites.length === 0 || sites.length > 4096 || !sites.every((s) => Number.isInteger(s) && s >= 0)) return `${decl.rule}: sites must be site numbers`;
    step.sites = sites as number[];
  }
  return step;
}

/** Steps from an untrusted list: all of them, checked, or null. */
export function checkSteps(raw: unknown, max = 32): RuleStep[] | null {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > max) return null;
  const steps = raw.map(checkStep);
  return steps.every((s): s is RuleStep => typeof s !== 'string') ? steps : null;
}

/** The usage of one rule's flags: `--sink N --window W`, `--window W [--impl mask|blocked]`. */
export function ruleUsage(decl: RuleDecl): string {
  const groups = flagGroups(decl);
  const parts: string[] = groups.some(([flag]) => flag === decl.flag) ? [] : [decl.flag];
  for (const [flag, fields] of [...groups].sort(([a], [b]) => Number(b === decl.flag) - Number(a === decl.flag))) {
    const part = `${flag} ${fields.map((f) => f.metavar).join(',')}`;
    parts.push(fields.every((f) => f.default !== undefined) ? `[${part}]` : part);
  }
  return parts.join(' ');
}

/** Every rule with its flags, each value's meaning and default, and an example: the rule part of `rewrite --help`. */
export function rulesHelp(): string {
  const lines: string[] = [];
  for (const d of RULE_DECLS) {
    const example = stepFlags({ rule: d.rule, params: Object.fromEntries(d.fields.map((f) => [f.key, parseField(f, f.example)])) });
    lines.push(`  ${ruleUsage(d)}`, `      ${d.title}${d.perSite ? ' (per site: narrowed by --sites)' : ''}. Example: ${example.map(shellWord).join(' ')}`);
    for (const f of d.fields) {
      const name = f.metavar.length <= 10 ? f.metavar : f.flag;
      lines.push(`      ${name.padEnd(14)} ${f.help}${f.default === undefined ? '' : ` (default ${f.default})`}`);
    }
  }
  return lines.join('\n');
}
