// docs/extension.md is the .vsix's readme (scripts/package.mjs), and vsce refuses to package a readme with relative
// links when the package names no repository: a link added there breaks packaging, which this says at once.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

describe('the package readme', () => {
  it('has no relative links', () => {
    const text = fs.readFileSync(path.resolve(__dirname, '..', '..', 'docs', 'extension.md'), 'utf8');
    const relative = [...text.matchAll(/\]\(([^)]+)\)/g)].map((m) => m[1]).filter((href) => !/^(https?:|mailto:|#)/.test(href));
    expect(relative).toEqual([]);
  });
});
