// Every rule, by name. Each family file exports its rules; adding a rule means adding it to one of these lists.
import type { Rule } from './rule';

const rules = new Map<string, Rule<never>>();

export function registerRules(list: Rule<never>[]): void {
  for (const r of list) {
    if (rules.has(r.name)) throw new Error(`rule '${r.name}' registered twice`);
    rules.set(r.name, r);
  }
}

export function getRule(name: string): Rule<unknown> | undefined {
  return rules.get(name) as Rule<unknown> | undefined;
}

export function allRules(): Rule<unknown>[] {
  return [...rules.values()] as Rule<unknown>[];
}
