// The words of the execution-provider status bar item and of the question where the choice is saved. No `vscode`
// here, so they are unit-tested; provider-status.ts puts them on screen.
import type { ExecutionProvider } from '../runtime/protocol';

export interface ProviderStatusText {
  /** The status bar text (codicons allowed). */
  text: string;
  tooltip: string;
  /** The last run fell back to another provider than the first preferred one. */
  fellBack: boolean;
}

/**
 * What the status bar says: the provider that ran last, when a run has happened, else the first preferred one (the one
 * that will be tried first). A fallback is marked: "cuda, cpu" preferred and cpu used means CUDA did not load.
 */
export function providerStatusText(preferred: ExecutionProvider[], lastUsed: ExecutionProvider | null): ProviderStatusText {
  const first = preferred[0] ?? 'cpu';
  const order = preferred.join(', ');
  const click = 'Click to choose (Attention Lens: Select Execution Provider).';
  if (lastUsed === null) {
    return { text: `$(chip) ORT ${first}`, tooltip: `Attention Lens runs models on onnxruntime's ${first} provider (preference: ${order}); no run yet. ${click}`, fellBack: false };
  }
  if (lastUsed === first) {
    return { text: `$(chip) ORT ${first}`, tooltip: `Attention Lens ran its last run on onnxruntime's ${first} provider (preference: ${order}). ${click}`, fellBack: false };
  }
  return {
    text: `$(warning) ORT ${lastUsed}`,
    tooltip: `The last run used ${lastUsed}, not ${first}: ${first} did not load (the Attention Lens output channel says why). Preference: ${order}. ${click}`,
    fellBack: true,
  };
}

export type SettingsTarget = 'user' | 'workspace';

export interface TargetChoice {
  target: SettingsTarget;
  label: string;
  detail: string;
  /** Shown beside the label: why this choice would not change what runs here. */
  description?: string;
}

/**
 * Where a chosen provider order is saved. Writing .vscode/settings.json changes a file of the project (often under
 * version control), so it is one of two choices, never done silently. A workspace value overrides the user's: the
 * user choice says so when there is one, since saving there would change nothing in this workspace.
 */
export function targetChoices(workspaceName: string | null, workspaceValue: readonly string[] | undefined): TargetChoice[] {
  const user: TargetChoice = { target: 'user', label: 'User settings', detail: 'For every workspace; no file of this project changes.' };
  if (workspaceName === null) return [user];
  if (workspaceValue !== undefined) user.description = `overridden here by this workspace's setting (${workspaceValue.join(', ')})`;
  return [
    user,
    { target: 'workspace', label: 'Workspace settings', detail: `Only for ${workspaceName}: writes attentionLens.executionProviders into its .vscode/settings.json.` },
  ];
}
