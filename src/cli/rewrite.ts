// `attention-lens rewrite MODEL.onnx RULE... -o OUT.onnx [--json]`: applies rules in the order given and saves the
// rewritten model. Each rule flag becomes one RuleRequest; `--sites` narrows every rule to those sites.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FUSE_OPS, FUSE_TARGETS } from '../rewriters/fuse/choose';
import { rewriteModel, type RuleRequest, type RewriteReport } from '../rewriters/pipeline';
import { UsageError } from './args';
import { formatTable, humanCount } from './format';

const USAGE =
  'usage: attention-lens rewrite MODEL.onnx RULE... -o OUT.onnx [--sites LIST] [--seq N] [--external-data auto|embed|external] [--json]\n' +
  'rules: --window W [--impl mask|blocked] | --sink N --window W | --strided K --window W | --power --window W |\n' +
  '       --neighborhood2d R | --block-topk B,K [--impl mask|gather] | --share-attn I:J[,I:J] | --share-kv I:J[,I:J] |\n' +
  '       --gqa G | --dictionary S | --prune-heads SITE:H,H[;SITE:H] | --drop-attention SITE[,SITE] | --expand |\n' +
  '       --fuse [--fuse-target cpu|cuda] [--fuse-op auto|MultiHeadAttention|GroupQueryAttention|Attention]';

export async function run(argv: string[]): Promise<number> {
  const parsed = parseRewriteArgs(argv);
  if (fs.existsSync(parsed.output) && path.resolve(parsed.output) === path.resolve(parsed.input)) {
    throw new UsageError('the output must not be the input model');
  }
  const report = rewriteModel(parsed.input, parsed.requests, parsed.output, {
    seqLen: parsed.seqLen,
    save: { externalData: parsed.externalData },
  });
  process.stdout.write(parsed.json ? JSON.stringify(report) + '\n' : renderRewrite(report));
  return 0;
}

export interface ParsedRewrite {
  input: string;
  output: string;
  requests: RuleRequest[];
  json: boolean;
  seqLen: number;
  externalData: 'auto' | 'embed' | 'external';
}

export function parseRewriteArgs(argv: string[]): ParsedRewrite {
  const positional: string[] = [];
  const requests: RuleRequest[] = [];
  let output: string | undefined;
  let json = false;
  let seqLen = 1024;
  let sites: number[] | undefined;
  let window: number | undefined;
  let impl: string | undefined;
  let externalData: ParsedRewrite['externalData'] = 'auto';
  // Modifiers of the window family collected first, so `--sink 4 --window 64` and `--window 64 --sink 4` mean the same.
  const windowMods: { rule: string; params: Record<string, unknown> }[] = [];
  // Modifiers of --fuse, in any order around it.
  const fuseMods: { target?: string; op?: string } = {};
  let windowSeen = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '-o': case '--output': output = value(); break;
      case '--json': json = true; break;
      case '--seq': seqLen = positiveInt(value(), a); break;
      case '--sites': sites = list(value(), a); break;
      case '--impl': impl = value(); break;
      case '--external-data': {
        const v = value();
        if (v !== 'auto' && v !== 'embed' && v !== 'external') throw new UsageError(`--external-data must be auto, embed or external`);
        externalData = v;
        break;
      }
      case '--window': window = positiveInt(value(), a); windowSeen = true; break;
      case '--sink': windowMods.push({ rule: 'sink', params: { sink: positiveInt(value(), a) } }); break;
      case '--strided': windowMods.push({ rule: 'strided', params: { stride: positiveInt(value(), a) } }); break;
      case '--power': windowMods.push({ rule: 'power', params: {} }); break;
      case '--neighborhood2d': requests.push({ rule: 'neighborhood2d', params: { radius: nonNegativeInt(value(), a) } }); break;
      case '--block-topk': {
        const [b, k] = value().split(',').map((x) => positiveInt(x, a));
        if (k === undefined) throw new UsageError('--block-topk takes B,K (block size, blocks kept)');
        requests.push({ rule: 'block-topk', params: { block: b, k } });
        break;
      }
      case '--share-attn': requests.push({ rule: 'share-attn', params: { pairs: pairs(value(), a) } }); break;
      case '--share-kv': requests.push({ rule: 'share-kv', params: { pairs: pairs(value(), a) } }); break;
      case '--gqa': requests.push({ rule: 'gqa', params: { groups: positiveInt(value(), a) } }); break;
      case '--dictionary': requests.push({ rule: 'dictionary', params: { atoms: positiveInt(value(), a) } }); break;
      case '--prune-heads': requests.push({ rule: 'prune-heads', params: { heads: headList(value()) } }); break;
      case '--expand': requests.push({ rule: 'expand', params: {} }); break;
      case '--fuse': requests.push({ rule: 'fuse', params: {} }); break;
      case '--fuse-target': fuseMods.target = choice(value(), a, FUSE_TARGETS); break;
      case '--fuse-op': fuseMods.op = choice(value(), a, FUSE_OPS); break;
      case '--drop-attention': requests.push({ rule: 'drop-attention', params: { sites: list(value(), a) } }); break;
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option ${a}\n${USAGE}`);
        positional.push(a);
    }
  }
  if (positional.length !== 1) throw new UsageError(USAGE);
  if (!output) throw new UsageError('rewrite needs -o OUT.onnx');
  if (windowMods.length > 1) throw new UsageError('use at most one of --sink, --strided, --power (each is combined with --window)');
  if (windowMods.length === 1 && window === undefined) throw new UsageError(`--${windowMods[0].rule} needs --window W`);
  if (windowSeen) {
    const mod = windowMods[0];
    const rule = mod ? mod.rule : 'window';
    requests.unshift({ rule, params: { window, ...(mod?.params ?? {}), ...(impl && rule === 'window' ? { impl } : {}) } });
  }
  if (impl) {
    const topk = requests.find((r) => r.rule === 'block-topk');
    if (topk) (topk.params as Record<string, unknown>).impl = impl;
    else if (!windowSeen || windowMods.length) throw new UsageError('--impl applies to --window (mask|blocked) or --block-topk (mask|gather)');
  }
  const fuse = requests.find((r) => r.rule === 'fuse');
  if ((fuseMods.target || fuseMods.op) && !fuse) throw new UsageError('--fuse-target and --fuse-op modify --fuse');
  if (fuse) fuse.params = { ...(fuseMods.target ? { target: fuseMods.target } : {}), ...(fuseMods.op ? { op: fuseMods.op } : {}) };
  if (requests.length === 0) throw new UsageError(`no rule given\n${USAGE}`);
  if (sites) for (const r of requests) if (r.rule !== 'drop-attention' && r.rule !== 'share-attn' && r.rule !== 'share-kv' && r.rule !== 'prune-heads') r.sites = sites;
  return { input: positional[0], output, requests, json, seqLen, externalData };
}

function choice<T extends string>(v: string, flag: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`${flag} must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as T;
}
function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${v}'`);
  return n;
}
function nonNegativeInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${flag} must be a non-negative integer, got '${v}'`);
  return n;
}
function list(v: string, flag: string): number[] {
  return v.split(',').map((x) => nonNegativeInt(x.trim(), flag));
}
function pairs(v: string, flag: string): [number, number][] {
  return v.split(',').map((p) => {
    const [i, j] = p.split(':').map((x) => nonNegativeInt(x, flag));
    if (j === undefined) throw new UsageError(`${flag} takes I:J pairs (source site : target site), got '${p}'`);
    return [i, j];
  });
}
function headList(v: string): Record<number, number[]> {
  const out: Record<number, number[]> = {};
  for (const part of v.split(';').filter(Boolean)) {
    const [site, heads] = part.split(':');
    if (heads === undefined) throw new UsageError(`--prune-heads takes SITE:H,H[;SITE:H], got '${part}'`);
    out[nonNegativeInt(site, '--prune-heads')] = list(heads, '--prune-heads');
  }
  return out;
}

export function renderRewrite(r: RewriteReport): string {
  const lines = [`${r.input} -> ${r.output?.file ?? '(not saved)'}`];
  for (const a of r.applied) {
    lines.push(`${a.rule} ${JSON.stringify(a.params)} on sites ${a.sites.join(', ')}`);
    lines.push(
      formatTable(
        ['site', 'before', 'after', 'FLOPs before', 'FLOPs after', 'nodes +/-'],
        a.changes.map((c) => [
          String(c.site), JSON.stringify(c.before), JSON.stringify(c.after),
          c.flopsBefore === null ? '?' : humanCount(c.flopsBefore), c.flopsAfter === null ? '?' : humanCount(c.flopsAfter),
          `+${c.nodesAdded}/-${c.nodesRemoved}`,
        ]),
      ),
    );
  }
  const ratio = r.flopsAfter > 0 ? (r.flopsBefore / r.flopsAfter).toFixed(2) : 'inf';
  lines.push(`attention FLOPs at ${r.seqLen} tokens: ${humanCount(r.flopsBefore)} -> ${humanCount(r.flopsAfter)} (bound ${ratio}x)`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}
