// Before any rule runs, sites written in a layout other than the standard one are rewritten into it (exactly), so
// that every rule reads one form. A site that cannot be re-laid out keeps its form and the reason is returned.
// A site in the standard layout whose K and V (or two other roles) share a projection apart from the third gets
// that projection split when a head rewrite follows, since those edit a packed projection only when it holds all three.
import type { RawSite } from '../../analysis/attention/site';
import { ShapeInfo } from '../../analysis/ir/shapes';
import type { GraphBuilder } from '../../analysis/ir/builder';
import type { SiteInfo } from '../../analysis/report/types';
import { LayoutError } from './score-operands';
import { nonStandardLayout, toStandardLayout } from './standard';
import { packedRoles, unpackProjection } from './unpack';

export interface Normalized {
  /** Site ids rewritten into the standard layout, with the layout they had. */
  sites: { id: number; from: string }[];
  /** Sites that kept their form but whose packed projection was split (unpack.ts): what was split, and why. */
  unpacked: { id: number; roles: string; why: string }[];
  /** Sites left as they were, with the reason. */
  kept: string[];
}

/** Whether the site's projections pack two roles apart from the third (which the standard-layout pass leaves). */
export function partlyPacked(info: SiteInfo): boolean {
  const b = info.binding;
  return !!b && (info.form === 'unfused' || info.form === 'sdpa-decomposed') && packedRoles(b).length === 2;
}

/** `splitPacked`: whether a rule that edits projections head by head follows (partly packed sites are then split). */
export function normalizeLayouts(b: GraphBuilder, raws: RawSite[], infos: SiteInfo[], splitPacked: boolean): Normalized {
  const out: Normalized = { sites: [], unpacked: [], kept: [] };
  // The shapes before any site is rewritten: a rewritten site's output carries fewer named dimensions, and a later
  // site's Reshapes on its scores are judged by the dimensions the exporter wrote.
  const before = new ShapeInfo(b.model.graph);
  const unpack = (i: number, why: string, from: string) => {
    try {
      out.unpacked.push({ id: infos[i].id, roles: unpackProjection(b, raws[i], infos[i], before), why });
    } catch (u) {
      if (!(u instanceof LayoutError)) throw u;
      out.kept.push(`site ${infos[i].id} (${from}) kept its layout: ${why}`);
    }
  };
  infos.forEach((info, i) => {
    const from = nonStandardLayout(info);
    if (!from) {
      if (splitPacked && partlyPacked(info)) unpack(i, `${packedRoles(info.binding!).map((r) => r.toUpperCase()).join(' and ')} share a projection apart from the third`, 'a partly packed projection');
      return;
    }
    try {
      toStandardLayout(b, raws[i], info, before);
      out.sites.push({ id: info.id, from });
    } catch (e) {
      if (!(e instanceof LayoutError)) throw e;
      // The head rewrites need only Q, K and V projections of their own, which a packed site can have as it is.
      unpack(i, e.message, from);
    }
  });
  if (out.sites.length || out.unpacked.length || out.kept.length) {
    b.removeUnused();
    b.sort();
  }
  return out;
}
