// The one error a rewrite may end with that some callers take as "nothing to do": a rule with no site to apply to.
// Its message crosses the core thread as text, so the pipeline writes it and callers recognise it from here. A module
// of its own, so that the extension host can ask without bundling the rewriters.

export const APPLIES_TO_NONE = 'applies to none';

/**
 * Whether an error (or its message) says that `rule` had no site to apply to: callers that add an optional step (the
 * dense baseline's `fuse`) treat that as "nothing to do", not as a failure.
 */
export function appliesToNone(e: unknown, rule: string): boolean {
  const message = e instanceof Error ? e.message : String(e);
  return message.startsWith(`${rule}: ${APPLIES_TO_NONE}`);
}
