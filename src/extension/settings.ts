// The extension's settings (package.json `contributes.configuration`), read into one typed object. Values a person
// typed by hand are checked here, so a bad entry falls back to the default with a warning instead of a failed run.
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { SessionSettings } from '../protocol';
import { type ExecutionProvider, isExecutionProvider } from '../runtime/protocol';
import { type SettingsTarget, targetChoices } from './provider-text';

export const SECTION = 'attentionLens';

export const DEFAULTS: SessionSettings = {
  executionProviders: ['cpu'],
  sequenceLengths: [64, 128, 256, 512],
  iterations: 10,
  minTimeMs: 1000,
  warmup: 2,
  // 0: the model's own length (or 512), within what a dashboard can draw (see calibration.ts).
  mapsSequenceLength: 0,
  calibrationInputs: null,
  outputFolder: null,
};

function positiveInt(v: unknown): v is number {
  return Number.isInteger(v) && (v as number) >= 1;
}

/** Relative paths in settings are taken from the first workspace folder, as people expect of a workspace setting. */
function resolvePath(p: string): string {
  if (path.isAbsolute(p)) return p;
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return root ? path.join(root, p) : path.resolve(p);
}

export function readSettings(warn: (message: string) => void): SessionSettings {
  const c = vscode.workspace.getConfiguration(SECTION);
  const eps = c.get<unknown>('executionProviders');
  const seqs = c.get<unknown>('sweep.sequenceLengths');
  const iterations = c.get<unknown>('benchmark.iterations');
  const minTime = c.get<unknown>('benchmark.minTimeMs');
  const warmup = c.get<unknown>('benchmark.warmup');
  const mapsSeq = c.get<unknown>('maps.sequenceLength');
  const calibration = c.get<unknown>('calibrationInputs');
  const output = c.get<unknown>('outputFolder');
  const s: SessionSettings = { ...DEFAULTS };
  if (Array.isArray(eps) && eps.length > 0 && eps.every((e) => typeof e === 'string' && isExecutionProvider(e))) s.executionProviders = eps as ExecutionProvider[];
  else if (eps !== undefined) warn(`${SECTION}.executionProviders must list providers from cpu, cuda, webgpu, dml, coreml; using cpu`);
  if (Array.isArray(seqs) && seqs.length > 0 && seqs.every(positiveInt)) s.sequenceLengths = [...new Set(seqs as number[])].sort((a, b) => a - b);
  else if (seqs !== undefined) warn(`${SECTION}.sweep.sequenceLengths must be positive integers; using ${DEFAULTS.sequenceLengths.join(', ')}`);
  if (positiveInt(iterations)) s.iterations = iterations;
  if (Number.isInteger(minTime) && (minTime as number) >= 0) s.minTimeMs = minTime as number;
  if (Number.isInteger(warmup) && (warmup as number) >= 0) s.warmup = warmup as number;
  if (Number.isInteger(mapsSeq) && (mapsSeq as number) >= 0) s.mapsSequenceLength = mapsSeq as number;
  if (typeof calibration === 'string' && calibration.trim()) s.calibrationInputs = resolvePath(calibration.trim());
  if (typeof output === 'string' && output.trim()) s.outputFolder = resolvePath(output.trim());
  return s;
}

/**
 * Saves a provider order where the person chose: user settings, or this workspace's (.vscode/settings.json). Asked
 * each time when a workspace is open, so no project file changes without consent. Returns the target, or undefined
 * when the question was dismissed (nothing is written).
 */
export async function writeExecutionProviders(eps: ExecutionProvider[]): Promise<SettingsTarget | undefined> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const folders = vscode.workspace.workspaceFolders;
  const name = folders?.length ? (vscode.workspace.name ?? folders[0].name) : null;
  const choices = targetChoices(name, config.inspect<string[]>('executionProviders')?.workspaceValue);
  const pick = choices.length === 1
    ? choices[0]
    : await vscode.window.showQuickPick(choices, { title: `Attention Lens: save "${eps.join(', ')}" in…`, ignoreFocusOut: true });
  if (!pick) return undefined;
  await config.update('executionProviders', eps, pick.target === 'user' ? vscode.ConfigurationTarget.Global : vscode.ConfigurationTarget.Workspace);
  return pick.target;
}
