// How rules name the nodes they add, which is how the analysis of a rewritten model and the profiler find them again:
// every node a rule adds to a site is `<anchor>::<rule>/…` (the anchor is the site's Softmax, or the fused operator
// that took its name; rewriters/sparse/ops.ts SiteOps writes the prefix).

/**
 * The scope, right after `<anchor>::<rule>/`, of the nodes that apply a rotary embedding (`fuse` writes them when it
 * turns the exported rotation into RotaryEmbedding). They belong to the site, but not to its score path, just as the
 * exported rotation they replace does not.
 */
export const ROTARY_SCOPE = 'rotary';

const IN_ROTARY_SCOPE = new RegExp(`::[^/]+/${ROTARY_SCOPE}/`);

/** Whether a node name is in a rule's rotary scope. */
export function isRotaryNode(name: string): boolean {
  return IN_ROTARY_SCOPE.test(name);
}
