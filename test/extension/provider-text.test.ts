import { describe, expect, it } from 'vitest';
import { providerStatusText, targetChoices } from '../../src/extension/provider-text';

describe('execution provider status bar text', () => {
  it('names the first preferred provider before any run', () => {
    const t = providerStatusText(['cuda', 'cpu'], null);
    expect(t.text).toBe('$(chip) ORT cuda');
    expect(t.tooltip).toContain('preference: cuda, cpu');
    expect(t.tooltip).toContain('no run yet');
    expect(t.fellBack).toBe(false);
  });

  it('names the provider the last run used, and marks a fallback', () => {
    expect(providerStatusText(['cpu'], 'cpu')).toMatchObject({ text: '$(chip) ORT cpu', fellBack: false });
    const t = providerStatusText(['cuda', 'cpu'], 'cpu');
    expect(t.text).toBe('$(warning) ORT cpu');
    expect(t.fellBack).toBe(true);
    expect(t.tooltip).toMatch(/^The last run used cpu, not cuda: cuda did not load/);
  });
});

describe('where a provider choice is saved', () => {
  it('without a workspace: user settings only, nothing to ask', () => {
    expect(targetChoices(null, undefined).map((c) => c.target)).toEqual(['user']);
  });

  it('with a workspace: user or workspace, the workspace one naming the file it writes', () => {
    const choices = targetChoices('my-project', undefined);
    expect(choices.map((c) => c.target)).toEqual(['user', 'workspace']);
    expect(choices[1].detail).toContain('.vscode/settings.json');
    expect(choices[1].detail).toContain('my-project');
    expect(choices[0].description).toBeUndefined();
  });

  it('says when a workspace value would override a user choice', () => {
    const [user] = targetChoices('my-project', ['cpu']);
    expect(user.description).toBe("overridden here by this workspace's setting (cpu)");
  });
});
