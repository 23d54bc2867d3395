// How failures are worded: one line a person can act on, everything else for the log; cancellation is no failure.
import { describe, expect, it } from 'vitest';
import { ModelError } from '../../src/analysis/onnx/errors';
import { CoreCancelled, CoreError } from '../../src/cli/core-client';
import { explain, markReported, userError, wasReported } from '../../src/extension/errors';
import { RuntimeError } from '../../src/runtime/client';

describe('explain', () => {
  it('treats cancellation as no failure', () => {
    expect(explain(new CoreCancelled('analyze')).cancelled).toBe(true);
    expect(explain(new RuntimeError('cancelled', 'bench cancelled')).cancelled).toBe(true);
  });

  it('gives the first line of a runtime failure and keeps the worker stack for the log', () => {
    const x = explain(new RuntimeError('failed', 'cannot load model.onnx: bad magic\nmore', 'at worker.js:1'));
    expect(x).toEqual({ cancelled: false, message: 'cannot load model.onnx: bad magic', detail: 'cannot load model.onnx: bad magic\nmore\nat worker.js:1' });
  });

  it('says that the runtime worker stopped, and how', () => {
    const x = explain(new RuntimeError('worker-exited', 'the runtime worker killed by SIGKILL:\nstderr tail'));
    expect(x.message).toBe('the runtime worker stopped unexpectedly (killed by SIGKILL:)');
    expect(x.detail).toContain('stderr tail');
  });

  it('separates the user’s mistakes from bugs', () => {
    expect(explain(new CoreError('window: W must be positive', true)).message).toBe('window: W must be positive');
    expect(explain(new CoreError('undefined is not a function', false, 'stack')).message).toBe('internal error: undefined is not a function');
    expect(explain(new ModelError('truncated', 'm.onnx', 'the file ends early')).message).toBe('m.onnx: the file ends early');
    expect(explain(userError('no variants yet')).message).toBe('no variants yet');
    expect(explain(new TypeError('x is undefined')).message).toBe('internal error: x is undefined');
    expect(explain('thrown string').message).toBe('internal error: thrown string');
  });

  it('remembers which errors were already shown', () => {
    const e = new Error('x');
    expect(wasReported(e)).toBe(false);
    markReported(e);
    expect(wasReported(e)).toBe(true);
    expect(wasReported('x')).toBe(false);
  });
});
