// What counts as a good failure. A user error is a ModelError or a RuleError (or another error the project marks as
// the user's) whose message is one line, names the file or the rule, and says something; anything else is an
// internal error: another exception type (TypeError, RangeError, a stack overflow, protobuf internals), a message
// with a newline or without content, a ModelError that blames a file the user did not give.
import * as path from 'node:path';
import { ModelError } from '../src/analysis/onnx/errors';
import { RuleError } from '../src/rewriters/rule';

/** One line, but not a flood: a message quoting a 100 kB name is not something a person can read. */
export const MAX_MESSAGE = 2000;

/** Phrases of JavaScript's own errors: a user error that quotes one is an internal error passed off as the user's. */
const LEAKED = /Maximum call stack|Cannot read propert|Cannot set propert|is not a function|is not iterable|Invalid (typed )?array length|outside the bounds|Array buffer allocation|\bundefined\b|\bNaN\b|\[object Object\]/;

export type Verdict = { user: string } | { internal: string; message: string; stack?: string };

export function judgeError(e: unknown, dir: string): Verdict {
  if (!(e instanceof Error)) return { internal: `threw a non-Error (${typeof e})`, message: String(e) };
  const message = e.message;
  const internal = (why: string): Verdict => ({ internal: why, message: message.slice(0, 500), stack: e.stack?.split('\n').slice(0, 12).join('\n') });
  const user = e instanceof ModelError || e instanceof RuleError || (e as { userError?: unknown }).userError === true;
  if (!user) return internal(`${e.name} is not a user error`);
  if (/[\r\n]/.test(message)) return internal('the message spans several lines');
  if (message.length > MAX_MESSAGE) return internal(`the message is ${message.length} characters long`);
  // Quoted text comes from the file (a name, an offset the file gives as 'NaN'); only the message's own words count.
  const words = message.replace(/'[^']*'/g, "''");
  if (LEAKED.test(words)) return internal(`the message quotes a JavaScript error (${LEAKED.exec(words)![0]})`);
  if (e instanceof ModelError) {
    // The file named must be one the user handed in (the model, its data files) or asked for (the output).
    const file = path.resolve(e.file);
    if (file !== dir && !file.startsWith(dir + path.sep)) return internal(`the ModelError names '${e.file}', not a file of this model`);
    if (message.length < e.file.length + 8) return internal('the ModelError does not say what is wrong');
    return { user: `ModelError:${e.code}` };
  }
  if (e instanceof RuleError) {
    if (!message.startsWith(`${e.rule}: `) || message.length < e.rule.length + 8) return internal('the RuleError does not name its rule and problem');
    return { user: 'RuleError' };
  }
  return { user: e.name };
}
