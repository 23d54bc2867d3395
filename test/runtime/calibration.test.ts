// Calibration data (src/runtime/inputs/calibration.ts) and the commands that take it: token files, inputs files and
// text, tokenised by a tokenizer.json beside the model (written here, next to a copy of a small fixture in a temporary
// folder) or read as bytes by a byte-level model; and `maps`, `compare`, `eval`, `importance` run on them.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeModel } from '../../src/analysis/analyze';
import type { InputInfo } from '../../src/analysis/report/types';
import { bytePiece, calibrationInputs, readCalibration } from '../../src/runtime/inputs/calibration';
import { writeNpy } from '../../src/runtime/inputs/npy';
import { cli } from './cli-helpers';
import { fixture, useBuiltWorker } from './helpers';

const LLAMA = fixture('llama-eager-ts-op17').model;
const BYTELM = fixture('bytelm-llama-trained');

/**
 * A byte-level BPE tokenizer in the Hugging Face format: single characters 0..6, then merges. Its ids stay below the
 * fixture's vocabulary of 256, as a model's own tokenizer would.
 */
function bpeTokenizer(vocab: Record<string, number>, merges: string[]): unknown {
  return {
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null, decoder: { type: 'ByteLevel' },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
}

const VOCAB = { d: 0, e: 1, f: 2, 'Ġ': 3, x: 4, de: 5, def: 6, 'Ġx': 7, r: 8, t: 9, u: 10, n: 11, re: 12, ret: 13, 'Ġre': 14, 'Ġret': 15, ':': 16 };
const MERGES = ['d e', 'de f', 'Ġ x', 'r e', 're t', 'Ġ re', 'Ġ ret'];

let dir: string;
let model: string;
let infos: InputInfo[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'attention-lens-calibration-'));
  // A copy of the small Llama with a tokenizer beside it: the Hugging Face export layout. The shared fixture is untouched.
  model = join(dir, 'model.onnx');
  copyFileSync(LLAMA, model);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(bpeTokenizer(VOCAB, MERGES)));
  infos = analyzeModel(model).model.inputs;
});
useBuiltWorker();

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, content: string | Uint8Array): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

describe('readCalibration', () => {
  it('tokenises text with the tokenizer.json beside the model, token by token', () => {
    const cal = readCalibration(write('a.py', 'def x:ret'), model, infos);
    expect(cal.kind).toBe('text');
    expect([...cal.ids!]).toEqual([6, 7, 16, 13]);
    expect(cal.pieces).toEqual(['def', 'Ġx', ':', 'ret']);
    expect(cal.how).toBe('tokenised with tokenizer.json');
  });

  it('reads text as its bytes for a byte-level model without a tokenizer, invalid UTF-8 included', () => {
    const bytes = Uint8Array.from([0x64, 0x65, 0x66, 0x20, 0x0a, 0xff, 0xc3]);
    const cal = readCalibration(write('b.txt', bytes), BYTELM.model, analyzeModel(BYTELM.model).model.inputs);
    expect(cal.kind).toBe('text');
    expect([...cal.ids!]).toEqual([...bytes]);
    expect(cal.pieces).toEqual(['d', 'e', 'f', '␣', '⏎', '\\xff', '\\xc3']);
  });

  it('refuses text it cannot tokenise, saying why and what to do', () => {
    const noVocab = infos.map((i) => ({ ...i, vocabSize: undefined }));
    expect(() => readCalibration(write('c.txt', 'hello'), BYTELM.model, noVocab)).toThrow(/no tokenizer\.json beside it and its vocabulary is unknown; put the model's tokenizer\.json in/);
    const big = infos.map((i) => (i.role === 'input_ids' ? { ...i, vocabSize: 50257 } : i));
    expect(() => readCalibration(write('c.txt', 'hello'), BYTELM.model, big)).toThrow(/is not byte-level \(vocabulary 50257\)/);
    // A tokenizer whose ids pass the model's vocabulary is not the model's own.
    const small = infos.map((i) => (i.role === 'input_ids' ? { ...i, vocabSize: 10 } : i));
    expect(() => readCalibration(write('d.py', 'def x:ret'), model, small)).toThrow(/gives token id 16, beyond the model's vocabulary of 10/);
    expect(() => readCalibration(join(dir, 'missing.txt'), model, infos)).toThrow(/does not exist/);
    expect(() => readCalibration(model, model, infos)).toThrow(/is a model, not calibration data/);
  });

  it('tells token ids from inputs: .bytes, 1-D integer .npy and .json arrays are ids; manifests and tensors are inputs', () => {
    expect(readCalibration(BYTELM.dir + '/eval.bytes', BYTELM.model, infos).kind).toBe('tokens');
    const ids = writeNpy({ dtype: 'int64', dims: [5], data: BigInt64Array.from([1n, 2n, 3n, 4n, 5n]) });
    expect([...readCalibration(write('ids.npy', ids), model, infos).ids!]).toEqual([1, 2, 3, 4, 5]);
    const tensor = writeNpy({ dtype: 'int64', dims: [1, 3], data: BigInt64Array.from([1n, 2n, 3n]) });
    expect(readCalibration(write('t.npy', tensor), model, infos).kind).toBe('inputs');
    expect([...readCalibration(write('ids.json', '{"ids": [7, 8]}'), model, infos).ids!]).toEqual([7, 8]);
    expect(readCalibration(write('m.json', '{"inputs": []}'), model, infos).kind).toBe('inputs');
    expect(readCalibration(fixture('llama-eager-ts-op17').dir, model, infos).kind).toBe('inputs');
    expect(() => readCalibration(write('neg.json', '[1, -2]'), model, infos)).toThrow(/non-negative integers/);
  });
});

describe('calibrationInputs', () => {
  it('feeds the first L tokens as the token-id input and labels them; fewer tokens are all fed, and said', () => {
    const cal = readCalibration(write('e.py', 'def x:ret def'), model, infos);
    const fed = calibrationInputs(cal, infos, 3);
    const t = fed.source.tensors!.input_ids;
    expect(t.dims).toEqual([1, 3]);
    expect([...(t.data as BigInt64Array)].map(Number)).toEqual([6, 7, 16]);
    expect(fed.labels).toEqual(['def', 'Ġx', ':']);
    expect(fed.tokens).toBe(3);
    expect(fed.description).toBe('the first 3 of 6 tokens of e.py (tokenised with tokenizer.json)');
    expect(fed.source.synthesis?.past).toBe(0);
    const all = calibrationInputs(cal, infos, 100);
    expect(all.tokens).toBe(6);
    expect(all.description).toMatch(/^all 6 tokens of e\.py/);
  });

  it('refuses tokens for a model without a token-id input', () => {
    const vit = analyzeModel(fixture('vit-eager-ts-op17').model).model.inputs;
    const cal = readCalibration(BYTELM.dir + '/eval.bytes', model, infos);
    expect(() => calibrationInputs(cal, vit, 16)).toThrow(/holds tokens, but the model takes no token ids \(its inputs: pixel_values\)/);
  });

  it('labels bytes readably', () => {
    expect([0x41, 0x20, 0x0a, 0x09, 0x00, 0x7f].map(bytePiece)).toEqual(['A', '␣', '⏎', '⇥', '\\x00', '\\x7f']);
  });
});

describe('commands on calibration data', () => {
  it('maps --inputs eval.bytes runs on the file (it was refused) and says which tokens it fed', async () => {
    const r = await cli('maps', BYTELM.model, '--site', '0', '--inputs', join(BYTELM.dir, 'eval.bytes'), '--seq', '32', '--no-probs', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { inputs: Record<string, { dims: number[] }>; tokens: string[] };
    expect(out.inputs.input_ids.dims).toEqual([1, 32]);
    const bytes = readFileSync(join(BYTELM.dir, 'eval.bytes')).subarray(0, 32);
    expect(out.tokens).toEqual(Array.from(bytes, bytePiece));
    const text = await cli('maps', BYTELM.model, '--site', '0', '--inputs', join(BYTELM.dir, 'eval.bytes'), '--seq', '32');
    expect(text.stdout).toContain('inputs: the first 32 of 262,144 tokens of eval.bytes (one token per byte)');
  });

  it('maps and compare on text take the tokenizer beside the model; without --seq the default length is stated', async () => {
    const file = write('f.py', 'def x:ret def x:ret');
    const r = await cli('maps', model, '--site', '0', '--inputs', file, '--no-probs', '--json');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as { tokens: string[] }).tokens).toEqual(['def', 'Ġx', ':', 'ret', 'Ġ', 'def', 'Ġx', ':', 'ret']);
    const c = await cli('compare', model, model, '--inputs', file);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/inputs: all 9 tokens of f\.py \(tokenised with tokenizer\.json\); up to 512 tokens \(the default\), --seq sets another length/);
    expect(c.stdout).toMatch(/input_ids\[1,9\]/);
  });

  it('eval on text of a byte-level model scores exactly what the same bytes as a .bytes file score', async () => {
    const bytes = readFileSync(join(BYTELM.dir, 'eval.bytes')).subarray(0, 4096);
    const asText = write('g.py', bytes);
    const asBytes = write('g.bytes', bytes);
    const args = ['--seq', '64', '--windows', '4', '--json'];
    const a = JSON.parse((await cli('eval', BYTELM.model, '--tokens', asText, ...args)).stdout) as { bitsPerToken: number; tokenizer: string; fileTokens: number };
    const b = JSON.parse((await cli('eval', BYTELM.model, '--tokens', asBytes, ...args)).stdout) as { bitsPerToken: number; fileTokens: number };
    expect(a.fileTokens).toBe(4096);
    expect(a.tokenizer).toBe('bytes (a byte-level model)');
    expect(a.bitsPerToken).toBe(b.bitsPerToken);
    expect(a.bitsPerToken).toBeGreaterThan(0.5);
    expect(a.bitsPerToken).toBeLessThan(4);
    const bad = await cli('eval', BYTELM.model, '--tokens', fixture('llama-eager-ts-op17').dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/eval needs token ids or text, and this is an inputs file/);
  });

  it('importance --inputs text scores the heads on the tokenised text', async () => {
    const file = write('h.py', 'def x:ret def x:ret def');
    const r = await cli('importance', model, '--inputs', file, '--sites', '0', '--no-maps', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { samples: number; sites: { site: number; heads: { outputChange: number }[] }[] };
    expect(out.samples).toBe(1);
    expect(out.sites[0].heads).toHaveLength(4);
    for (const h of out.sites[0].heads) expect(h.outputChange).toBeGreaterThan(0);
  });
});
