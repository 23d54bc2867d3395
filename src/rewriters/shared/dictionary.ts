// `dictionary s` (methods.md; MASA, "Share Your Attention"): for each projection kind (Q, K, V, O), the L layers'
// matrices are written as W(l) = Σₐ c(l,a)·D(a) over s shared atoms. The atoms and coefficients come from the SVD of
// the stacked, flattened matrices M (L × in·out): D(a) = σₐ·vₐ (the a-th right singular vector, scaled) and
// c(l,a) = U(l,a), the best rank-s fit in the least-squares sense. The file stores the atoms once per kind and s
// coefficients per layer; the graph rebuilds each weight at run time with a MatMul (coefficients × atoms) and a
// Reshape (and a Concat for packed QKV weights). With s = L the fit is exact.
//
// Matrices are grouped by kind and shape (a grouped-query model's K and V differ in shape from its Q); biases are
// left as they are.
import { attr, type GraphBuilder } from '../../analysis/ir/builder';
import type { Value } from '../../analysis/ir/graph';
import { i64 } from '../../analysis/ir/tensor-data';
import { RuleError, siteById, type Rule, type RuleResult, type SiteChange } from '../rule';
import { cost, trackNodes } from '../prune/edit/report';
import { siteForm, siteStructure, StructureError, type SiteStructure } from '../prune/edit/structure';
import type { ResolvedProjection } from '../prune/edit/projection';
import { addWeight, setInput, transpose, type Matrix, type WeightDtype } from '../prune/edit/weights';
import { svdWide } from './svd';

export interface DictionaryParams {
  atoms: number;
}

const NAME = 'dictionary';
type Kind = 'q' | 'k' | 'v' | 'o';

/** One layer's matrix of one kind, as the weight input stores it (or its slice of a packed weight). */
interface Entry {
  site: number;
  s: SiteStructure;
  kind: Kind;
  proj: ResolvedProjection;
  stored: Matrix;
}

export const dictionary: Rule<DictionaryParams> = {
  name: NAME,
  family: 'shared',
  summary: 'Q/K/V/O weights of all layers as combinations of s shared atoms (SVD fit)',
  validate(params) {
    const s = params?.atoms;
    if (!Number.isInteger(s) || s < 1) throw new RuleError(NAME, `the number of atoms must be a positive integer, got ${String(s)}`);
  },
  skipReason(site) {
    if (!siteForm(site.form)) return `${site.form} sites are not supported`;
    if (!site.projections.q || !site.projections.k || !site.projections.v) return 'its Q, K and V projections were not all found';
    return null;
  },
  apply(ctx, siteIds, params): RuleResult {
    const warnings: string[] = [];
    const nodes = trackNodes(ctx.builder);
    const entries: Entry[] = [];
    const structures = new Map<number, SiteStructure>();
    for (const id of siteIds) {
      const { info, raw } = siteById(ctx, id);
      let s: SiteStructure;
      try {
        s = siteStructure(ctx.builder.graph, raw, info);
      } catch (e) {
        if (e instanceof StructureError) throw new RuleError(NAME, `site ${id}: ${e.message}`);
        throw e;
      }
      structures.set(id, s);
      for (const kind of ['q', 'k', 'v', 'o'] as const) {
        const proj = s.proj[kind];
        if (!proj) continue;
        entries.push({ site: id, s, kind, proj, stored: storedSlice(s, kind, proj) });
      }
    }
    // Fit one dictionary per kind and shape.
    const groups = new Map<string, Entry[]>();
    for (const e of entries) {
      const key = `${e.kind}:${e.stored.rows}x${e.stored.cols}:${e.proj.dtype}`;
      groups.set(key, [...(groups.get(key) ?? []), e]);
    }
    const rebuilt = new Map<Entry, Value>();
    const perSite = new Map<number, { before: number; after: number; atoms: Record<string, number> }>();
    for (const [key, group] of groups) {
      const [kind, shape] = key.split(':');
      const L = group.length;
      const rank = Math.min(params.atoms, L);
      if (params.atoms >= L) warnings.push(`${kind.toUpperCase()} ${shape}: ${params.atoms} atoms for ${L} matrices is full rank (exact, nothing saved)`);
      const { atoms, coefficients } = fit(group.map((e) => e.stored), rank);
      const { rows, cols } = group[0].stored;
      const dtype: WeightDtype = group[0].proj.dtype;
      const atomsValue = addWeight(ctx.builder, `dictionary.${kind}.${shape}.atoms`, [rank, rows * cols], atoms, dtype);
      const target = ctx.builder.initializer(ctx.builder.uniqueName(`dictionary.${kind}.${shape}.shape`), [2], i64([rows, cols]));
      group.forEach((e, l) => {
        const base = `${e.s.anchor.name}::${NAME}/${kind}`;
        const coef = addWeight(ctx.builder, `${base}_coefficients`, [1, rank], coefficients.subarray(l * rank, (l + 1) * rank), dtype);
        const flat = ctx.builder.op('MatMul', [coef, atomsValue], { name: `${base}_combine` });
        rebuilt.set(e, ctx.builder.op('Reshape', [flat, target], { name: `${base}_weight` }));
        const stat = perSite.get(e.site) ?? { before: 0, after: 0, atoms: {} };
        // Stored per site after the rewrite: its own coefficients plus an equal share of the kind's atoms.
        stat.before += rows * cols;
        stat.after += rank + (rank * rows * cols) / L;
        stat.atoms[kind] = rank;
        perSite.set(e.site, stat);
      });
    }
    // Point every projection at its rebuilt weight (packed weights: the rebuilt parts concatenated).
    const byNode = new Map<ResolvedProjection['node'], Entry[]>();
    for (const e of entries) byNode.set(e.proj.node, [...(byNode.get(e.proj.node) ?? []), e]);
    for (const [node, list] of byNode) {
      const p = list[0].proj;
      let weight: Value;
      if (list.length === 1) weight = rebuilt.get(list[0])!;
      else {
        const parts = list.map((e) => ({ e, start: e.s.packed!.parts.find((x) => x.role === e.kind)!.start })).sort((a, b) => a.start - b.start);
        weight = ctx.builder.op('Concat', parts.map((x) => rebuilt.get(x.e)!), {
          name: `${list[0].s.anchor.name}::${NAME}/qkv_weight`,
          attrs: { axis: attr.int(p.outIn ? 0 : 1) },
        });
      }
      setInput(node, p.weightInput, weight);
    }
    ctx.builder.removeUnused();
    const counted = nodes();
    const changes: SiteChange[] = siteIds.map((id, i) => {
      const s = structures.get(id)!;
      const stat = perSite.get(id) ?? { before: 0, after: 0, atoms: {} };
      const c = cost(s.heads, s.headDim, s.vHeadDim, ctx.seqLen);
      return {
        site: id,
        before: { weightParams: stat.before },
        after: { weightParams: Math.round(stat.after), atoms: stat.atoms },
        flopsBefore: c.flops,
        flopsAfter: c.flops,
        bytesBefore: c.bytes,
        bytesAfter: c.bytes,
        // The rebuild nodes of all sites are counted once, on the first site.
        nodesAdded: i === 0 ? counted.nodesAdded : 0,
        nodesRemoved: i === 0 ? counted.nodesRemoved : 0,
      };
    });
    return { changes, warnings };
  },
};

/** The kind's matrix in the layout the weight input stores it, cut out of a packed weight where needed. */
function storedSlice(s: SiteStructure, kind: Kind, p: ResolvedProjection): Matrix {
  let rows = p.featureRows;
  if (kind !== 'o' && s.packed) {
    const part = s.packed.parts.find((x) => x.role === kind)!;
    rows = { rows: part.end - part.start, cols: rows.cols, data: rows.data.slice(part.start * rows.cols, part.end * rows.cols) };
  }
  return p.outIn ? rows : transpose(rows);
}

/** Atoms (rank × N) and coefficients (L × rank) of the best rank-`rank` fit of the stacked, flattened matrices. */
export function fit(matrices: Matrix[], rank: number): { atoms: Float64Array; coefficients: Float64Array } {
  const L = matrices.length;
  const n = matrices[0].rows * matrices[0].cols;
  const m = new Float64Array(L * n);
  matrices.forEach((x, l) => m.set(x.data, l * n));
  const { u, sigma, vt } = svdWide(m, L, n);
  const atoms = new Float64Array(rank * n);
  const coefficients = new Float64Array(L * rank);
  for (let a = 0; a < rank; a++) {
    for (let k = 0; k < n; k++) atoms[a * n + k] = sigma[a] * vt[a * n + k];
    for (let l = 0; l < L; l++) coefficients[l * rank + a] = u[l * L + a];
  }
  return { atoms, coefficients };
}
