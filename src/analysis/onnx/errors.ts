// One error type for everything wrong with a user's model file, so callers (CLI, extension) can show a one-line
// message that names the file and the problem, and tell it apart from bugs.
export type ModelErrorCode =
  | 'not-found'
  | 'empty'
  | 'not-onnx'
  | 'truncated'
  | 'ir-version'
  | 'external-missing'
  | 'external-escape'
  | 'external-range'
  | 'graph-cycle'
  | 'graph-dangling'
  | 'graph-duplicate'
  | 'unknown-fields'
  | 'write-refused'
  | 'too-large';

export class ModelError extends Error {
  constructor(
    readonly code: ModelErrorCode,
    readonly file: string,
    detail: string,
  ) {
    super(`${file}: ${detail}`);
    this.name = 'ModelError';
  }
}
