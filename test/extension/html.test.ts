// The dashboard page: a strict CSP (nothing runs without the nonce), the nonce on every script and stylesheet, and an
// embedded report that survives any string it contains.
import { describe, expect, it } from 'vitest';
import { contentSecurityPolicy, dashboardPage, escapeHtml, makeNonce, scriptSafeJson } from '../../src/extension/html';
import { EMBEDDED_REPORT_ID } from '../../src/protocol';

describe('dashboard page', () => {
  it('allows scripts only by nonce and resources only from the extension', () => {
    const csp = contentSecurityPolicy('N0nce', 'https://file+.vscode-resource.vscode-cdn.net');
    expect(csp).toBe(
      "default-src 'none'; img-src https://file+.vscode-resource.vscode-cdn.net data:; style-src https://file+.vscode-resource.vscode-cdn.net 'nonce-N0nce'; script-src 'nonce-N0nce'; font-src https://file+.vscode-resource.vscode-cdn.net",
    );
    expect(csp).not.toContain('unsafe');
    expect(contentSecurityPolicy('x')).toBe("default-src 'none'; img-src data:; style-src 'nonce-x'; script-src 'nonce-x'");
  });

  it('puts the nonce on every script and stylesheet, and in the meta the toolkit reads', () => {
    const nonce = makeNonce();
    const html = dashboardPage({ title: 'T <b>', nonce, cspSource: 'vscode-src', script: { uri: 'vscode-src/webview.js' }, style: { uri: 'vscode-src/webview.css' } });
    const scripts = [...html.matchAll(/<script[^>]*>/g)].map((m) => m[0]);
    expect(scripts.length).toBe(1);
    for (const tag of [...scripts, ...html.match(/<link[^>]*>/g)!]) expect(tag).toContain(`nonce="${nonce}"`);
    expect(html).toContain(`<meta property="csp-nonce" content="${nonce}">`);
    expect(html).toContain('<title>T &lt;b&gt;</title>');
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(makeNonce()).not.toBe(nonce);
  });

  it('embeds a report that parses back to itself, whatever its strings hold', () => {
    const tricky = { a: '</script><script>alert(1)</script>', b: '<!-- x -->', c: 'line\u2028sep\u2029', d: '&amp;' };
    const html = dashboardPage({ title: 't', nonce: 'n', script: { inline: 'let x = "</script>";' }, style: { inline: 'a{}' }, embedded: tricky });
    const m = new RegExp(`<script type="application/json" id="${EMBEDDED_REPORT_ID}" nonce="n">(.*?)</script>`, 's').exec(html);
    expect(m).not.toBeNull();
    expect(JSON.parse(m![1])).toEqual(tricky);
    // The inline bundle cannot close its own script element early either.
    expect(html).toContain('let x = "<\\/script>";');
    expect(scriptSafeJson('</script>')).not.toContain('<');
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
