// The options parser every subcommand but `rewrite` shares: long options, short aliases, and unknown options as errors.
import { describe, expect, it } from 'vitest';
import { UsageError, parseArgs } from '../../src/cli/args';

const SPEC = { output: true, json: false, seq: true };

describe('parseArgs', () => {
  it('reads --key value, --key=value, flags and positionals', () => {
    const a = parseArgs(['m.onnx', '--output', 'a.onnx', '--seq=64', '--json'], SPEC);
    expect(a.positional).toEqual(['m.onnx']);
    expect(Object.fromEntries(a.options)).toEqual({ output: 'a.onnx', seq: '64', json: true });
  });

  it('maps a short alias to its long option', () => {
    const a = parseArgs(['-o', 'out.onnx', 'm.onnx'], SPEC, { o: 'output', j: 'json' });
    expect(a.options.get('output')).toBe('out.onnx');
    expect(a.positional).toEqual(['m.onnx']);
    expect(parseArgs(['-j'], SPEC, { j: 'json' }).options.get('json')).toBe(true);
  });

  it('refuses short options it does not know, and a short option without its value', () => {
    expect(() => parseArgs(['-o', 'out.onnx'], SPEC)).toThrow(new UsageError('unknown option -o'));
    expect(() => parseArgs(['-x'], SPEC, { o: 'output' })).toThrow(/unknown option -x/);
    expect(() => parseArgs(['-o'], SPEC, { o: 'output' })).toThrow(/option -o needs a value/);
    expect(() => parseArgs(['--bogus'], SPEC)).toThrow(/unknown option --bogus/);
  });

  it('keeps a lone dash and negative numbers positional', () => {
    expect(parseArgs(['-', '-3'], SPEC, { o: 'output' }).positional).toEqual(['-', '-3']);
  });
});
