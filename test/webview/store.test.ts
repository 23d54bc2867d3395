// The dashboard's state: host messages applied in order, and what setState keeps brings the same view back.
import { describe, expect, it } from 'vitest';
import type { AttentionMaps, SessionSnapshot, SpeedResults } from '../../src/protocol';
import { type ViewState, initialState, persisted, reduce, restore } from '../../webview/store';

function snapshot(patch: Partial<SessionSnapshot> = {}): SessionSnapshot {
  return {
    modelPath: '/m/a.onnx', modelName: 'a.onnx', report: null, analysisError: null, rules: [], draft: null, variants: [],
    speed: null, accuracy: null, maps: null, calibration: null, evaluation: null, decode: null, generation: null, importance: null, exports: [],
    settings: { executionProviders: ['cpu'], sequenceLengths: [64], iterations: 10, minTimeMs: 1000, warmup: 2, mapsSequenceLength: 64, calibrationInputs: null, outputFolder: null },
    ...patch,
  };
}

const maps = { site: 1, pattern: 'window 8', dims: [2, 4, 4] } as AttentionMaps;

describe('dashboard state', () => {
  it('applies sessions, tasks, failures and tab requests', () => {
    let s = reduce(initialState(), { type: 'didChangeSession', session: snapshot() });
    expect(s.session?.modelName).toBe('a.onnx');
    s = reduce(s, { type: 'didChangeTasks', tasks: [{ id: 't1', title: 'Benchmarking', fraction: 0.5, message: 'timed runs', timing: true }] });
    expect(s.tasks.length).toBe(1);
    s = reduce(s, { type: 'didRequestTab', tab: 'speed' });
    expect(s.ui.tab).toBe('speed');
    for (let i = 0; i < 5; i++) s = reduce(s, { type: 'didFail', title: 'Benchmark', message: `m${i}` });
    expect(s.failures.map((f) => f.message)).toEqual(['m2', 'm3', 'm4']);
  });

  it('selects the site and pattern of new maps and keeps a head that exists', () => {
    let s = reduce({ ...initialState(), ui: { ...initialState().ui, mapsHead: 5 } }, { type: 'didChangeSession', session: snapshot({ maps }) });
    expect([s.ui.mapsSite, s.ui.mapsPattern, s.ui.mapsHead]).toEqual([1, 'window 8', 0]);
    // The same maps again (another change of the session) leave the person's choices alone.
    s = { ...s, ui: { ...s.ui, mapsPattern: null, mapsHead: 1 } };
    s = reduce(s, { type: 'didChangeSession', session: { ...s.session!, variants: [] } });
    expect([s.ui.mapsPattern, s.ui.mapsHead]).toEqual([null, 1]);
  });

  it('forgets a chosen sequence length that the new benchmark did not measure', () => {
    const speed = { seqs: [32, 128] } as SpeedResults;
    let s: ViewState = { ...initialState(), ui: { ...initialState().ui, speedSeq: 64 } };
    s = reduce(s, { type: 'didChangeSession', session: snapshot({ speed }) });
    expect(s.ui.speedSeq).toBeNull();
  });

  it('restores what it saved, and nothing it cannot read', () => {
    let s = reduce(initialState(), { type: 'didChangeSession', session: snapshot() });
    s = reduce(s, { type: 'didRequestTab', tab: 'maps' });
    s = reduce(s, { type: 'didChangeTasks', tasks: [{ id: 't', title: 'x', fraction: null, message: '', timing: false }] });
    const back = restore(JSON.parse(JSON.stringify(persisted(s))));
    expect(back.session).toEqual(s.session);
    expect(back.ui).toEqual(s.ui);
    expect(back.tasks).toEqual([]); // running work belongs to the host, which sends it again
    expect(restore(null)).toEqual(initialState());
    expect(restore({ ui: { tab: 'nope' }, session: { modelPath: 3 } })).toEqual(initialState());
  });
});
