// `attention-lens rewrite MODEL.onnx RULE... -o OUT.onnx [--json]`: applies rules in the order given and saves the
// rewritten model. Each rule flag becomes one RuleRequest; `--sites` narrows every rule to those sites.
//
// Weights stream (see pipeline.ts): unchanged ones are referenced in the input's data file when the output sits in
// its folder (`--self-contained` copies them instead), changed ones go to `<OUT>.onnx.data`. Progress goes to stderr
// when it is a terminal (or with --progress); Ctrl-C stops at the next safe point and removes what was half written.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { WorkProgress } from '../analysis/progress';
import { CoreCancelled, CoreClient, CoreError } from '../extension/core-client';
import { rewriteModel, type RuleRequest, type RewriteReport } from '../rewriters/pipeline';
import { UsageError } from './args';
import { formatTable, humanBytes, humanCount } from './format';

const USAGE =
  'usage: attention-lens rewrite MODEL.onnx RULE... -o OUT.onnx [--sites LIST] [--seq N] [--external-data auto|embed|external]\n' +
  '       [--self-contained] [--progress|--quiet] [--json]\n' +
  'rules: --window W [--impl mask|blocked] | --sink N --window W | --strided K --window W | --power --window W |\n' +
  '       --neighborhood2d R | --block-topk B,K [--impl mask|gather] | --share-attn I:J[,I:J] | --share-kv I:J[,I:J] |\n' +
  '       --gqa G | --dictionary S | --prune-heads SITE:H,H[;SITE:H] | --drop-attention SITE[,SITE] | --expand';

export async function run(argv: string[]): Promise<number> {
  const parsed = parseRewriteArgs(argv);
  if (fs.existsSync(parsed.output) && path.resolve(parsed.output) === path.resolve(parsed.input)) {
    throw new UsageError('the output must not be the input model');
  }
  const showProgress = parsed.progress ?? process.stderr.isTTY === true;
  const progress = showProgress ? progressPrinter(process.stderr) : undefined;
  let report: RewriteReport;
  try {
    report = await rewrite(parsed, progress?.show);
  } finally {
    progress?.end();
  }
  process.stdout.write(parsed.json ? JSON.stringify(report) + '\n' : renderRewrite(report));
  return 0;
}

/**
 * In the core thread when the build has one next to this file (dist/), so that Ctrl-C can reach the rewrite: the
 * main thread stays free to take the signal and sets the thread's cancel flag. From sources (tests), in this thread.
 */
async function rewrite(parsed: ParsedRewrite, onProgress?: (p: WorkProgress) => void): Promise<RewriteReport> {
  const save = { externalData: parsed.externalData, copyExternal: parsed.selfContained };
  const script = path.join(__dirname, 'core-thread.js');
  if (!fs.existsSync(script)) return rewriteModel(parsed.input, parsed.requests, parsed.output, { seqLen: parsed.seqLen, save, ...(onProgress ? { onProgress } : {}) });
  const core = new CoreClient(script);
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    process.stderr.write('\nstopping at the next safe point and removing what was written (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  try {
    return await core.request(
      { type: 'write', file: parsed.input, steps: [], requests: parsed.requests, output: parsed.output, seqLen: parsed.seqLen, ...save },
      controller.signal,
      onProgress,
    );
  } catch (e) {
    if (e instanceof CoreCancelled) {
      await core.settled();
      throw Object.assign(new Error('rewrite cancelled; nothing was written'), { userError: true, exitCode: 130 });
    }
    // A bug in the thread: show where it happened there, not where the reply arrived.
    if (e instanceof CoreError && !e.userError && e.threadStack) e.stack = e.threadStack;
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    core.dispose();
  }
}

/** One status line, rewritten in place on a terminal and printed at most once a second otherwise. */
function progressPrinter(out: NodeJS.WriteStream): { show: (p: WorkProgress) => void; end: () => void } {
  const tty = out.isTTY === true;
  let last = 0;
  let phase = '';
  let shown = false;
  return {
    show(p) {
      const now = Date.now();
      if (!tty && p.phase === phase && now - last < 1000) return;
      last = now;
      phase = p.phase;
      const amount = p.phase === 'save' && p.total > 0 ? ` ${humanBytes(p.done)} of ${humanBytes(p.total)} (${Math.round((100 * p.done) / p.total)}%)` : '';
      const line = `${p.phase}: ${p.message}${amount}`;
      out.write(tty ? `\r\x1b[K${line}` : `${line}\n`);
      shown = true;
    },
    end() {
      if (tty && shown) out.write('\n');
    },
  };
}

export interface ParsedRewrite {
  input: string;
  output: string;
  requests: RuleRequest[];
  json: boolean;
  seqLen: number;
  externalData: 'auto' | 'embed' | 'external';
  /** Copy unchanged weights into the output's data file instead of referencing the input's. */
  selfContained: boolean;
  /** Show progress on stderr (default: when stderr is a terminal). */
  progress?: boolean;
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
  let selfContained = false;
  let progress: boolean | undefined;
  // Modifiers of the window family collected first, so `--sink 4 --window 64` and `--window 64 --sink 4` mean the same.
  const windowMods: { rule: string; params: Record<string, unknown> }[] = [];
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
      case '--self-contained': selfContained = true; break;
      case '--progress': progress = true; break;
      case '--quiet': progress = false; break;
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
  if (requests.length === 0) throw new UsageError(`no rule given\n${USAGE}`);
  if (sites) for (const r of requests) if (r.rule !== 'drop-attention' && r.rule !== 'share-attn' && r.rule !== 'share-kv' && r.rule !== 'prune-heads') r.sites = sites;
  if (selfContained && externalData === 'embed') throw new UsageError('--self-contained applies to external data; --external-data embed already puts every weight in the .onnx');
  return { input: positional[0], output, requests, json, seqLen, externalData, selfContained, ...(progress !== undefined ? { progress } : {}) };
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
  const placed = r.output?.weights;
  if (placed) lines.push(`weights: ${describePlacement(placed, r.output!)}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  return lines.join('\n') + '\n';
}

/** Where the saved model's weights are, in one line. */
export function describePlacement(w: NonNullable<RewriteReport['output']>['weights'], out: NonNullable<RewriteReport['output']>): string {
  const parts: string[] = [];
  if (w.embedded.tensors) parts.push(`${humanBytes(w.embedded.bytes)} embedded`);
  if (w.written.tensors) parts.push(`${humanBytes(w.written.bytes)} written to ${path.basename(out.dataFile ?? '')}`);
  if (w.copied.tensors) parts.push(`${humanBytes(w.copied.bytes)} copied to ${path.basename(out.dataFile ?? '')}`);
  for (const r of w.referenced) parts.push(`${humanBytes(r.bytes)} read in place from ${r.location}`);
  return `${parts.join(', ') || 'none'} (${w.decision})`;
}
