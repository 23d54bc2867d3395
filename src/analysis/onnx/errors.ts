// One error type for everything wrong with a user's model file, so callers (CLI, extension) can show a one-line
// message that names the file and the problem, and tell it apart from bugs.
export type ModelErrorCode =
  | 'not-found'
  | 'empty'
  | 'not-onnx'
  | 'truncated'
  | 'ir-version'
  | 'bad-opset'
  | 'bad-tensor'
  | 'bad-node'
  | 'external-missing'
  | 'external-escape'
  | 'external-range'
  | 'graph-cycle'
  | 'graph-dangling'
  | 'graph-duplicate'
  | 'too-deep'
  | 'unknown-fields'
  | 'write-refused'
  | 'too-large';

/** Beyond this, the middle of the detail is cut: a message quoting a 100 kB name from a hostile file is no help. */
const MAX_DETAIL = 600;

export class ModelError extends Error {
  constructor(
    readonly code: ModelErrorCode,
    readonly file: string,
    detail: string,
  ) {
    super(`${oneLine(file)}: ${shorten(oneLine(detail))}`);
    this.name = 'ModelError';
  }
}

/**
 * Names in a model file (nodes, values, tensors, locations) are arbitrary strings and end up quoted in messages: control
 * characters are written as escapes, so that the message stays one line whatever the file contains.
 */
export function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

function shorten(s: string): string {
  if (s.length <= MAX_DETAIL) return s;
  const keep = (MAX_DETAIL >> 1) - 10;
  return `${s.slice(0, keep)} … (${s.length - 2 * keep} characters left out) … ${s.slice(-keep)}`;
}
