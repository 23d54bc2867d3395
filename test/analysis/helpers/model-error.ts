// The check every bad-input test makes: loading, analysing or saving fails with a ModelError of the expected code
// whose message names the file and says what is wrong.
import { expect } from 'vitest';
import { ModelError, type ModelErrorCode } from '../../../src/analysis/onnx/errors';

/**
 * Asserts that `fn` throws a ModelError with this code (or one of these) whose message names `file` and matches
 * `problem`; with `firstLine`, the message is one line that begins `file: ` (what a load error shows the user).
 */
function expectError(fn: () => unknown, code: ModelErrorCode | ModelErrorCode[], file: string, problem: RegExp, firstLine: boolean): ModelError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a ModelError').toBeInstanceOf(ModelError);
  const err = caught as ModelError;
  expect([code].flat()).toContain(err.code);
  if (firstLine) expect(err.message.startsWith(`${file}: `), err.message).toBe(true);
  else expect(err.message).toContain(file);
  expect(err.message).toMatch(problem);
  if (firstLine) expect(err.message).not.toMatch(/\n/);
  return err;
}

/** A one-line error that begins with the file's path as given. */
export const expectModelError = (fn: () => unknown, code: ModelErrorCode | ModelErrorCode[], file: string, problem: RegExp) =>
  expectError(fn, code, file, problem, true);

/** An error that names the file anywhere (a save refused under another spelling of the path names the one given). */
export const expectModelErrorNaming = (fn: () => unknown, code: ModelErrorCode | ModelErrorCode[], file: string, problem: RegExp) =>
  expectError(fn, code, file, problem, false);
