// `help`, `COMMAND --help` and `-h`: every command lists every option it accepts with its default and one example that
// runs; runtime commands default to a length that means something (not 16 tokens) and say which; an encoder's maps do
// not report "mass on future keys"; paths are printed as given.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fixture } from '../helpers/fixtures';
import { pinFixture } from '../helpers/pinned';

const ROOT = path.resolve(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli.js');
const COMMANDS = ['analyze', 'bench', 'compare', 'eval', 'importance', 'maps', 'plan', 'rewrite', 'synth'];

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { cwd: ROOT, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe('help', () => {
  it('attention-lens help lists every command and how to get its options', async () => {
    const r = await cli('help');
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\s`, 'm'));
    expect(r.stdout).toContain('COMMAND --help');
  });

  it.each(COMMANDS)('%s --help, -h and "help COMMAND" print the options with their defaults and an example', async (c) => {
    const [long, short, word] = await Promise.all([cli(c, '--help'), cli(c, '-h'), cli('help', c)]);
    for (const r of [long, short, word]) expect(r.code).toBe(0);
    expect(short.stdout).toBe(long.stdout);
    expect(word.stdout).toBe(long.stdout);
    const mod = (await import(`../../src/cli/${c}`)) as { help: { options: { name: string; default?: string }[]; example: string } };
    for (const o of mod.help.options) {
      expect(long.stdout).toContain(`--${o.name}`);
      if (o.default) expect(long.stdout).toContain(`(default: ${o.default})`);
    }
    expect(long.stdout).toContain(`example:\n  ${mod.help.example}`);
  });

  it("rewrite's example runs as printed, and rewrite prints the paths as given", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cli-help-'));
    try {
      const out = path.relative(ROOT, path.join(dir, 'demo.w16.onnx'));
      const r = await cli('rewrite', 'examples/demo-llama.onnx', '--window', '16', '--impl', 'blocked', '--sites', '0', '--then', '--prune-heads', '1:0', '-o', out);
      expect(r.stderr).toBe('');
      expect(r.stdout.split('\n')[0]).toBe(`examples/demo-llama.onnx -> ${out}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('default lengths', () => {
  it("compare without --seq runs at the model's own length (its 64-row position table, not 512 or 16) and says so", async () => {
    const m = fixture('gpt2-eager-ts-op17').model;
    const r = await cli('compare', m, m);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('input_ids[1,64]');
    expect(r.stdout).toContain('synthesized inputs of 64 tokens (the longest its position table or causal buffer allows); --seq sets another length');
  });

  it("a longer --seq than the model's causal buffer (nanoGPT's block_size), or a token outside its vocabulary, is refused with the limit, not run into an error inside the model", async () => {
    const m = path.join(__dirname, '..', 'models', 'nanogpt-op11.onnx');
    const dflt = await cli('compare', m, m);
    expect(dflt.stdout).toContain('input_ids[1,64]');
    const dir = mkdtempSync(path.join(tmpdir(), 'al-vocab-'));
    const bytes = path.join(dir, 'text.bytes');
    writeFileSync(bytes, Buffer.from([1, 2, 3, 200, 4]));
    const vocab = await cli('eval', m, '--tokens', bytes, '--seq', '4', '--windows', '1');
    expect(vocab.stderr.trim()).toBe(`attention-lens eval: --tokens ${bytes}: token 200 at position 3 is outside the model's vocabulary of 50`);
    const ok = path.join(dir, 'ok.bytes');
    // Ids below 32: this nanoGPT has no LM head, and eval reads its 32-wide hidden output as the logits.
    writeFileSync(ok, Buffer.from(Array.from({ length: 300 }, (_, i) => i % 30)));
    const evalDefault = await cli('eval', m, '--tokens', ok, '--windows', '2');
    expect(evalDefault.stdout).toContain('2 windows of 64 on cpu');
    // --impl auto times its forms at the figures' length (1024 here), kept within the buffer: it used to fail inside.
    const auto = await cli('rewrite', m, '--window', '4', '--impl', 'auto', '--auto-runs', '2', '-o', path.join(dir, 'auto.onnx'));
    expect(auto.code, auto.stderr).toBe(0);
    expect(auto.stdout).toContain('impl auto for step 1 (window) at 64 tokens on cpu');
    const rewriteAuto = ['rewrite', m, '--window', '4', '--impl', 'auto', '--seq', '100', '-o', path.join(dir, 'never.onnx')];
    for (const argv of [['compare', m, m, '--seq', '100'], ['bench', m, '--seq', '32,100', '--iters', '2'], ['importance', m, '--seq', '100'], ['eval', m, '--tokens', ok, '--seq', '100'], rewriteAuto]) {
      const r = await cli(...argv);
      expect(r.code, argv[0]).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/100.*takes at most 64 .*\(its position table or causal buffer\)/);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('a model exported with fixed shapes runs at its one length and batch; another --seq or --batch is refused, not run into an error', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'al-fixed-'));
    try {
      const m = pinFixture('gpt2-eager-ts-op17', dir, { batch: 1, sequence: 16 });
      const dflt = await cli('compare', m, m);
      expect(dflt.stdout).toContain('synthesized inputs of 16 tokens (the model\'s fixed input length)');
      const bytes = path.join(dir, 'text.bytes');
      writeFileSync(bytes, Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 13) % 256)));
      const evalDefault = await cli('eval', m, '--tokens', bytes, '--windows', '2');
      expect(evalDefault.stdout).toContain('2 windows of 16 on cpu');
      for (const [argv, msg] of [
        [['compare', m, m, '--seq', '64'], '--seq 64: the model was exported for exactly 16 tokens (its inputs have fixed shapes); give --seq 16 or leave it out'],
        [['bench', m, '--seq', '16,32', '--iters', '2'], '--seq 32: the model was exported for exactly 16 tokens'],
        [['eval', m, '--tokens', bytes, '--seq', '8'], '--seq 8: the model was exported for exactly 16 tokens'],
        [['bench', m, '--batch', '2', '--iters', '2'], '--batch 2: the model was exported for a batch of exactly 1 (its inputs have fixed shapes)'],
        [['compare', m, m, '--batch', '2'], '--batch 2: the model was exported for a batch of exactly 1'],
        [['eval', m, '--tokens', bytes, '--batch', '2'], '--batch 2: the model was exported for a batch of exactly 1'],
      ] as const) {
        const r = await cli(...argv);
        expect(r.code, argv.join(' ')).not.toBe(0);
        expect(r.stderr.trim().split('\n'), argv.join(' ')).toHaveLength(1);
        expect(r.stderr, argv.join(' ')).toContain(msg);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a [batch, 1, time] mask input does not make a model fixed at one token (its axes are not established)', async () => {
    const m = path.join(__dirname, '..', 'models', 'relpos-conformer-op14.onnx');
    const r = await cli('compare', m, m, '--seq', '24');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('feats[1,24,20]');
  });

  it('compare of a model without a position table defaults to 512 tokens', async () => {
    const m = fixture('llama-eager-ts-op17').model;
    const r = await cli('compare', m, m);
    expect(r.stdout).toContain('input_ids[1,512]');
    expect(r.stdout).toContain('512 tokens (the default)');
  });

  it('images whose size the model leaves open are synthesized at --image-size (224 by default, and said so); a fixed size refuses it', async () => {
    // A UNet block's latents: 224×224 of them would be 50176 tokens, and the attention matrix 40 GB.
    const unet = path.join(__dirname, '..', 'models', 'unet-attn-op14.onnx');
    const r = await cli('compare', unet, unet, '--image-size', '6', '--seq', '5');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('sample[1,32,6,6] encoder_hidden_states[1,5,24]');
    expect(r.stdout).toContain('synthesized inputs of 5 tokens and 6×6 images (the model leaves their size open; --image-size sets it)');
    const bench = await cli('bench', unet, '--image-size', '6', '--seq', '5', '--min-runs', '2', '--min-time', '0', '--warmup', '0', '--profile-runs', '0', '--json');
    expect(bench.code, bench.stderr).toBe(0);
    const vit = fixture('vit-eager-ts-op17').model;
    const fixed = await cli('compare', vit, vit, '--image-size', '64');
    expect(fixed.code).not.toBe(0);
    expect(fixed.stderr.trim()).toBe('attention-lens compare: --image-size: the model was exported for 32×32 images (its input has fixed sizes); leave it out');
    const text = await cli('compare', fixture('llama-eager-ts-op17').model, fixture('llama-eager-ts-op17').model, '--image-size', '8');
    expect(text.stderr.trim()).toBe('attention-lens compare: --image-size: the model has no image input');
  });

  it('an image model is described in patches and images, never tokens', async () => {
    const vit = fixture('vit-eager-ts-op17').model;
    // 32×32 images in 8×8 patches plus the class token: every site attends over 17 patches, whatever is asked.
    const analyzed = await cli('analyze', vit);
    expect(analyzed.stdout).toContain('2 attention site(s); cost at 17 patches:');
    const dir = mkdtempSync(path.join(tmpdir(), 'cli-vit-'));
    try {
      const rewritten = await cli('rewrite', vit, '--window', '4', '-o', path.join(dir, 'w4.onnx'));
      expect(rewritten.stdout).toMatch(/^attention FLOPs at 17 patches: /m);
      expect(rewritten.stdout).toContain('"keysPerQuery":17');
      const compared = await cli('compare', vit, path.join(dir, 'w4.onnx'));
      expect(compared.stdout).toContain('images of the model’s own size (its patch grid); --inputs gives real images');
      const benched = await cli('bench', vit, '--min-runs', '3', '--min-time', '0', '--warmup', '0', '--profile-runs', '0');
      expect(benched.code).toBe(0);
      expect(benched.stdout).toMatch(/ image +0 .* img\/s/);
      for (const out of [analyzed.stdout, rewritten.stdout, compared.stdout, benched.stdout]) {
        expect(out).not.toMatch(/\btokens?\b|seq 17|tokens\/s/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an encoder's maps do not report mass on future keys; a decoder's do", async () => {
    const bert = await cli('maps', fixture('bert-eager-ts-op17').model, '--site', '0', '--seq', '8');
    expect(bert.code).toBe(0);
    expect(bert.stdout).not.toContain('future keys');
    expect(bert.stdout).toContain('not causal');
    const gpt2 = await cli('maps', fixture('gpt2-eager-ts-op17').model, '--site', '0', '--seq', '8');
    expect(gpt2.stdout).toContain('largest mass on future keys');
    // The runtime ran a temporary copy; nothing printed points into it.
    expect(gpt2.stdout + gpt2.stderr).not.toMatch(/attention-lens-maps|\/tmp\//);
  });
});
