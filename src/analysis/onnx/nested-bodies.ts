// Subgraph bodies (If, Loop, Scan and any GRAPH attribute) and model-local function bodies get the checks the main
// graph gets at load: every name they read is defined in the body or a scope around it, nothing is produced twice,
// their nodes form no cycle, every node's domain is imported, and nodes of the operators the tool reads have their
// required inputs, their attributes of the right type and sane head counts (validate.ts). The rewriters copy, save
// and upgrade these bodies, and onnxruntime runs them: a hostile body is refused here in one line naming where it is.
import { ModelError, oneLine } from './errors';
import { checkAttributes, checkNodeArity } from './validate';

interface AttrP {
  name?: string | null;
  type?: number | null;
  g?: BodyP | null;
  graphs?: BodyP[] | null;
  [k: string]: unknown;
}
interface NodeP {
  name?: string | null;
  opType?: string | null;
  domain?: string | null;
  input?: string[] | null;
  output?: string[] | null;
  attribute?: AttrP[] | null;
}
interface BodyP {
  name?: string | null;
  node?: NodeP[] | null;
  initializer?: { name?: string | null }[] | null;
  sparseInitializer?: { values?: { name?: string | null } | null }[] | null;
  input?: ({ name?: string | null } | string)[] | null;
  output?: ({ name?: string | null } | string)[] | null;
}
interface FunctionP extends BodyP {
  domain?: string | null;
  opsetImport?: { domain?: string | null }[] | null;
}

const GRAPH = 5;
const GRAPHS = 10;

/**
 * Checks every body nested in the main graph's nodes (`outer`: the names the main graph defines) and every
 * model-local function. `opsets`: the domains the model imports.
 */
export function checkNestedBodies(
  mainNodes: NodeP[],
  functions: FunctionP[],
  outer: Set<string>,
  opsets: Set<string>,
  file: string,
): void {
  for (const [i, n] of mainNodes.entries()) checkNodeBodies(n, nodeName(n, i), outer, opsets, file, 'the main graph');
  const seen = new Set<string>();
  for (const [i, f] of functions.entries()) {
    const where = `model-local function '${f.name ?? ''}'`;
    if (!f.name) throw new ModelError('bad-node', file, `model-local function ${i} has no name`);
    const key = `${norm(f.domain)}:${f.name}`;
    if (seen.has(key)) throw new ModelError('graph-duplicate', file, `model-local function '${f.name}' (domain '${norm(f.domain) || 'ai.onnx'}') is defined twice`);
    seen.add(key);
    const own = new Set([...opsets, ...(f.opsetImport ?? []).map((o) => norm(o.domain))]);
    checkBody(f, new Set(), own, file, where);
  }
}

/** The bodies held by one node's attributes, checked with the names around the node in scope. */
function checkNodeBodies(n: NodeP, name: string, scope: Set<string>, opsets: Set<string>, file: string, around: string): void {
  for (const a of n.attribute ?? []) {
    const bodies = [a.g, ...(a.graphs ?? [])].filter((g): g is BodyP => !!g);
    if (!bodies.length && (a.type === GRAPH || a.type === GRAPHS)) {
      throw new ModelError('bad-node', file, `node '${name}' (${n.opType ?? ''}) in ${around}: attribute '${a.name ?? ''}' is a graph but holds none`);
    }
    for (const g of bodies) checkBody(g, scope, opsets, file, `attribute '${a.name ?? ''}' of node '${name}' in ${around}`);
  }
}

function checkBody(g: BodyP, scope: Set<string>, opsets: Set<string>, file: string, where: string): void {
  const fail = (code: 'graph-dangling' | 'graph-duplicate' | 'graph-cycle' | 'bad-opset', detail: string) =>
    new ModelError(code, file, `${detail} (in ${where})`);
  const local = new Set<string>();
  const define = (name: string | null | undefined, what: string) => {
    if (!name) return;
    if (local.has(name)) throw fail('graph-duplicate', `value '${name}' is produced twice (${what})`);
    local.add(name);
  };
  for (const t of g.initializer ?? []) define(t.name, 'an initializer');
  for (const t of g.sparseInitializer ?? []) define(t.values?.name, 'a sparse initializer');
  for (const i of g.input ?? []) define(nameOf(i), 'a body input');
  const nodes = g.node ?? [];
  nodes.forEach((n, i) => {
    for (const o of n.output ?? []) define(o, `node '${nodeName(n, i)}'`);
  });
  const known = (name: string) => local.has(name) || scope.has(name);
  nodes.forEach((n, i) => {
    const domain = norm(n.domain);
    if (!opsets.has(domain)) throw fail('bad-opset', `node '${nodeName(n, i)}' (${n.opType ?? ''}) is in domain '${domain || 'ai.onnx'}', which is not imported`);
    for (const x of n.input ?? []) {
      if (x && !known(x)) throw fail('graph-dangling', `node '${nodeName(n, i)}' (${n.opType ?? ''}) reads '${x}', which nothing in the body or around it defines`);
    }
  });
  for (const o of g.output ?? []) {
    const name = nameOf(o);
    if (!name || !known(name)) throw fail('graph-dangling', `body output '${name ?? ''}' is not produced`);
  }
  checkAcyclic(nodes, fail);
  const views = nodes.map((n, i) => nodeView(n, i));
  try {
    checkNodeArity(views, file);
    checkAttributes(views, file);
  } catch (e) {
    if (!(e instanceof ModelError)) throw e;
    throw new ModelError(e.code, file, `${e.message.slice(oneLine(file).length + 2)} (in ${where})`);
  }
  const inner = new Set([...scope, ...local]);
  nodes.forEach((n, i) => checkNodeBodies(n, nodeName(n, i), inner, opsets, file, where));
}

/** Nodes of one body form no cycle through the values they produce (Kahn's algorithm). */
function checkAcyclic(nodes: NodeP[], fail: (code: 'graph-cycle', detail: string) => ModelError): void {
  const producer = new Map<string, number>();
  nodes.forEach((n, i) => (n.output ?? []).forEach((o) => o && producer.set(o, i)));
  const waiting = nodes.map((n) => new Set((n.input ?? []).flatMap((x) => (x && producer.has(x) ? [producer.get(x)!] : []))).size);
  const readers = new Map<number, number[]>();
  nodes.forEach((n, i) => {
    for (const p of new Set((n.input ?? []).flatMap((x) => (x && producer.has(x) ? [producer.get(x)!] : [])))) readers.set(p, [...(readers.get(p) ?? []), i]);
  });
  const ready = waiting.flatMap((w, i) => (w === 0 ? [i] : []));
  let done = 0;
  while (ready.length) {
    const i = ready.pop()!;
    done++;
    for (const r of readers.get(i) ?? []) if (--waiting[r] === 0) ready.push(r);
  }
  if (done < nodes.length) {
    const stuck = waiting.flatMap((w, i) => (w > 0 ? [`'${nodeName(nodes[i], i)}'`] : [])).slice(0, 5);
    throw fail('graph-cycle', `the body has a cycle through nodes ${stuck.join(', ')}`);
  }
}

function nodeView(n: NodeP, i: number) {
  const domain = norm(n.domain);
  const opType = n.opType ?? '';
  return {
    name: nodeName(n, i),
    domain,
    opType,
    qualifiedOp: domain ? `${domain}.${opType}` : opType,
    inputs: (n.input ?? []).map((x) => (x ? x : null)),
    outputs: (n.output ?? []).map((name) => ({ name })),
    attributes: new Map((n.attribute ?? []).map((a) => [a.name ?? '', a as never])),
  };
}

function nodeName(n: NodeP, i: number): string {
  return n.name || `${n.opType ?? 'node'}_${i}`;
}

function nameOf(x: { name?: string | null } | string): string | null | undefined {
  return typeof x === 'string' ? x : x.name;
}

function norm(d: string | null | undefined): string {
  return !d || d === 'ai.onnx' ? '' : d;
}
