// Raising a model's ONNX (default-domain) opset, e.g. an opset-11 export to the 13 the sparse rules write their nodes
// in. Every node whose operator changed meaning or signature on the way is converted so that it computes what it
// computed before (table.ts lists each operator and why); the others only change version. The opset import and, when
// too old for the new opset, the IR version are raised.
//
// Every node is planned before any is edited: a node that cannot be converted exactly refuses the whole upgrade with
// one line naming it, and the model is left as it was. Subgraph bodies (If, Loop, Scan) and model-local functions are
// not edited: the upgrade is refused when one holds a node that would need converting.
import { GraphBuilder } from '../../analysis/ir/builder';
import type { AttributeProtoLike, Node, NodeProtoLike, Value } from '../../analysis/ir/graph';
import { assertGraphConsistent } from '../../analysis/ir/invariants';
import { ShapeInfo } from '../../analysis/ir/shapes';
import { i64 } from '../../analysis/ir/tensor-data';
import type { Model } from '../../analysis/ir/load';
import type { ConvertContext } from './convert';
import { changesFor, NEWEST_TARGET, OLDEST_SOURCE } from './table';
import { floatTypeOf } from './values';

/** A model that cannot be raised to the opset asked for, with the reason (names the node and operator). */
export class OpsetUpgradeError extends Error {
  readonly userError = true;
  constructor(readonly from: number, readonly to: number, readonly reason: string) {
    super(`cannot raise ONNX opset ${from} to ${to}: ${reason}`);
    this.name = 'OpsetUpgradeError';
  }
}

export interface OpsetUpgrade {
  /** Default-domain opset before and after (equal when nothing was done; 0 when the model imported none). */
  from: number;
  to: number;
  irVersion: { from: number; to: number };
  /** Converted nodes by operator (as it was named before); operators that only changed version are not counted. */
  converted: Record<string, number>;
}

/** The IR version each opset came with (onnx/helper.py VERSION_TABLE): a model at that opset needs at least it. */
const MIN_IR_VERSION: Readonly<Record<number, number>> = { 9: 4, 10: 5, 11: 6, 12: 7, 13: 7 };

/**
 * Raises the model's default-domain opset to `to` (at most 13), converting what needs it; a no-op when the model is
 * already at `to` or newer. Edits in place: pass the pipeline's working copy, never a model the caller still needs.
 */
export function upgradeOpset(target: GraphBuilder | Model, to: number): OpsetUpgrade {
  const b = target instanceof GraphBuilder ? target : new GraphBuilder(target);
  const model = b.model;
  const from = model.opsets.get('') ?? 0;
  const ir = model.irVersion;
  if (from >= to) return { from, to: from, irVersion: { from: ir, to: ir }, converted: {} };
  const fail = (reason: string) => new OpsetUpgradeError(from, to, reason);
  if (to > NEWEST_TARGET) throw fail(`the upgrade knows the operator changes up to opset ${NEWEST_TARGET}`);
  const defaultNodes = model.graph.nodes.filter((n) => n.domain === '');
  if (from === 0 && defaultNodes.length > 0) throw fail('the model uses ONNX operators but imports no ONNX opset');
  if (from > 0 && from < OLDEST_SOURCE) throw fail(`opset ${from} is older than ${OLDEST_SOURCE}, the oldest the upgrade converts from`);
  checkFunctions(model, to, fail);

  const ctx = context(b, to);
  const plans: (() => void)[] = [];
  const converted: Record<string, number> = {};
  for (const n of model.graph.nodes) {
    checkSubgraphs(n, from, to, fail);
    if (n.domain !== '') continue;
    let changed = false;
    for (const change of changesFor(n.opType, from, to)) {
      if (change.how === 'same') continue;
      const plan = change.how(ctx, n);
      if (typeof plan === 'string') throw fail(`${n.opType} '${n.name}': ${plan}`);
      if (plan) {
        plans.push(plan);
        changed = true;
      }
    }
    if (changed) converted[n.opType] = (converted[n.opType] ?? 0) + 1;
  }
  for (const apply of plans) apply();

  b.setOpset('', to);
  const irTo = Math.max(ir, MIN_IR_VERSION[to] ?? ir);
  model.irVersion = irTo;
  model.proto.irVersion = irTo;
  b.sort();
  assertGraphConsistent(model.graph);
  return { from, to, irVersion: { from: ir, to: irTo }, converted };
}

function context(b: GraphBuilder, to: number): ConvertContext {
  const shapes = new ShapeInfo(b.graph);
  const int64s = new Map<string, Value>();
  const types = new Map<Value, number | undefined>();
  return {
    b,
    shapes,
    target: to,
    int64(values) {
      const key = values.join(',');
      let v = int64s.get(key);
      if (!v) {
        v = b.initializer(b.uniqueName(`opset${to}/int64[${key}]`), [values.length], i64(values));
        int64s.set(key, v);
      }
      return v;
    },
    floatType: (v) => floatTypeOf(v, types),
  };
}

interface GraphProtoLike {
  node?: NodeProtoLike[] | null;
}

/** Nodes of the subgraphs in these attributes, recursively, as protos (the IR keeps subgraph bodies as loaded). */
function subgraphNodes(attributes: Iterable<AttributeProtoLike>, out: NodeProtoLike[] = []): NodeProtoLike[] {
  for (const a of attributes) {
    for (const g of [a.g, ...(a.graphs ?? [])] as (GraphProtoLike | null | undefined)[]) {
      for (const inner of g?.node ?? []) {
        out.push(inner);
        subgraphNodes(inner.attribute ?? [], out);
      }
    }
  }
  return out;
}

const isDefaultDomain = (d: string | null | undefined) => !d || d === 'ai.onnx';

/** Subgraph bodies run at the model's opset too; the upgrade does not edit them, so any node there that needs converting refuses it. */
function checkSubgraphs(n: Node, from: number, to: number, fail: (reason: string) => Error): void {
  for (const inner of subgraphNodes(n.attributes.values())) {
    if (!isDefaultDomain(inner.domain)) continue;
    if (changesFor(inner.opType ?? '', from, to).some((c) => c.how !== 'same')) {
      throw fail(`${inner.opType} '${inner.name ?? ''}' inside a subgraph of ${n.opType} '${n.name}' would need converting, and the upgrade does not edit subgraphs`);
    }
  }
}

/** Model-local functions import their own opsets; raising the model's alone would leave them behind. */
function checkFunctions(model: Model, to: number, fail: (reason: string) => Error): void {
  for (const f of (model.proto.functions ?? []) as { name?: string; opsetImport?: { domain?: string | null; version?: unknown }[] }[]) {
    const own = f.opsetImport?.find((o) => isDefaultDomain(o.domain));
    if (own && Number(String(own.version)) < to) throw fail(`model-local function '${f.name ?? ''}' imports ONNX opset ${String(own.version)}, and the upgrade does not edit functions`);
  }
}
