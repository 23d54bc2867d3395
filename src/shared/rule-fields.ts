// The kinds of value a rewrite rule's parameter can take, each with its one parser and formatter. A field's text is
// what a person types (in the studio, in a prompt, after a CLI flag); its value is what the rule receives. Both
// directions live here so that `format(parse(text))` is the canonical text and `parse(format(value))` the same value,
// whichever side (CLI, studio, host) does the work. Pure: no DOM, no Node, no vscode.

import { parseHeadPlan, planJson, type HeadPlanFile } from './head-plan';

export type FieldType = 'int' | 'choice' | 'pairs' | 'heads' | 'sites' | 'plan';

/** What a rule's parameters hold once parsed: plain JSON, so a step crosses the webview boundary unchanged. */
export type FieldValue = number | string | [number, number][] | Record<string, number[]> | number[] | HeadPlanFile;

export interface FieldDecl {
  /** The rule's parameter name (`window`, `impl`, ...). */
  key: string;
  /** The CLI flag that carries the value. Fields of one rule that share a flag are joined by ',' (`--block-topk B,K`). */
  flag: string;
  /** What the value is called in usage lines: `W`, `B`, `I:J[,I:J]`. */
  metavar: string;
  label: string;
  type: FieldType;
  /** The text used when the flag is left out; absent: the flag is required. */
  default?: string;
  /** A value that makes sense on most models: the form's starting text for a required field, and `--help`'s example. */
  example: string;
  /** Smallest accepted integer (int fields; default 1). */
  min?: number;
  choices?: string[];
  /**
   * Choices only the command line can carry out (`impl auto` times candidates in a run before rewriting): the studio
   * and the prompts do not offer them, and a dashboard step holding one is refused with the reason.
   */
  cliOnly?: string[];
  help: string;
}

/** The choices the dashboard and the prompts offer: all but the command-line-only ones. */
export function interactiveChoices(field: FieldDecl): string[] {
  return (field.choices ?? []).filter((c) => !field.cliOnly?.includes(c));
}

const INT = /^\d+$/;
const PAIR = /^(\d+):(\d+)$/;

/** The value of `text`, or throws an Error whose message names the field and the accepted form. */
export function parseField(field: FieldDecl, text: string): FieldValue {
  const v = text.replace(/\s+/g, '');
  const bad = (form: string) => new Error(`${field.label} (${field.flag}): ${form}, got '${text}'`);
  switch (field.type) {
    case 'plan': {
      // The plan's JSON text (the CLI reads it from the file named after --plan); its entries keep their spaces.
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (e) {
        throw new Error(`${field.label} (${field.flag}): not JSON (${(e as Error).message})`);
      }
      try {
        return parseHeadPlan(json);
      } catch (e) {
        throw new Error(`${field.label} (${field.flag}): ${(e as Error).message}`);
      }
    }
    case 'int': {
      const min = field.min ?? 1;
      if (!INT.test(v) || Number(v) < min) throw bad(`a whole number of at least ${min}`);
      return Number(v);
    }
    case 'choice':
      if (!field.choices?.includes(v)) throw bad(`one of ${field.choices?.join(', ')}`);
      return v;
    case 'pairs':
      return v.split(',').map((p) => {
        const m = PAIR.exec(p);
        if (!m) throw bad('pairs like 0:1,2:3 (source site : target site)');
        return [Number(m[1]), Number(m[2])] as [number, number];
      });
    case 'heads': {
      const out: Record<string, number[]> = {};
      const parts = v.split(';').filter(Boolean);
      if (parts.length === 0) throw bad('site:heads like 0:1,2;1:0 (sites separated by ;)');
      for (const part of parts) {
        const m = /^(\d+):(\d+(?:,\d+)*)$/.exec(part);
        if (!m) throw bad('site:heads like 0:1,2;1:0 (sites separated by ;)');
        out[String(Number(m[1]))] = m[2].split(',').map(Number);
      }
      return out;
    }
    case 'sites':
      if (!/^\d+(,\d+)*$/.test(v)) throw bad('site numbers like 0,1');
      return v.split(',').map(Number);
  }
}

/** Why `text` is not acceptable, or null: for feedback while a person types. */
export function fieldError(field: FieldDecl, text: string): string | null {
  try {
    parseField(field, text);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** The canonical text of a value (what `parseField` reads back to the same value). */
export function formatField(field: FieldDecl, value: FieldValue): string {
  switch (field.type) {
    case 'int':
    case 'choice':
      return String(value);
    case 'pairs':
      return (value as [number, number][]).map(([i, j]) => `${i}:${j}`).join(',');
    case 'heads':
      return Object.entries(value as Record<string, number[]>).map(([s, hs]) => `${s}:${hs.join(',')}`).join(';');
    case 'sites':
      return (value as number[]).join(',');
    case 'plan':
      return JSON.stringify(planJson(value as HeadPlanFile));
  }
}

/** Whether an untrusted value (from a webview message or a saved state) is one this field could have parsed. */
export function isFieldValue(field: FieldDecl, value: unknown): value is FieldValue {
  const nat = (n: unknown) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 1e9;
  switch (field.type) {
    case 'int':
      return nat(value) && (value as number) >= (field.min ?? 1);
    case 'choice':
      return typeof value === 'string' && (field.choices ?? []).includes(value);
    case 'pairs':
      return Array.isArray(value) && value.length > 0 && value.length <= 256 && value.every((p) => Array.isArray(p) && p.length === 2 && p.every(nat));
    case 'heads':
      return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length > 0 &&
        Object.entries(value).every(([k, hs]) => /^\d+$/.test(k) && Array.isArray(hs) && hs.length > 0 && hs.length <= 4096 && hs.every(nat));
    case 'sites':
      return Array.isArray(value) && value.length > 0 && value.length <= 4096 && value.every(nat);
    case 'plan':
      // A plan is what its own text reads back to.
      try {
        return JSON.stringify(parseField(field, formatField(field, value as HeadPlanFile))) === JSON.stringify(value);
      } catch {
        return false;
      }
  }
}
