// What VS Code reads from package.json before any of our code runs.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  activationEvents: string[];
  contributes: { customEditors: { viewType: string; priority: string; selector: { filenamePattern: string }[] }[] };
};

describe('the extension manifest', () => {
  it('activates in a workspace holding ONNX models, so the provider shows in the status bar before a model is opened', () => {
    expect(manifest.activationEvents).toContain('workspaceContains:**/*.onnx');
  });

  it('opens .onnx files in the dashboard by default', () => {
    const editor = manifest.contributes.customEditors.find((e) => e.viewType === 'attentionLens.modelEditor');
    expect(editor?.priority).toBe('default');
    expect(editor?.selector.map((s) => s.filenamePattern)).toContain('*.onnx');
  });
});
