// The dashboard page, for a webview and for an exported report. Both get a strict Content-Security-Policy: nothing
// loads or runs unless it carries this page's nonce (or, in a webview, comes from the extension's own files). The
// exported page inlines the same bundle and stylesheet and embeds the session, so its charts are the dashboard's own.
// The toolkit (FAST) probes for :focus-visible with a <style> element; it takes its nonce from the csp-nonce meta.
// No `vscode` here.
import { randomBytes } from 'node:crypto';
import { EMBEDDED_REPORT_ID } from '../protocol';

export function makeNonce(): string {
  return randomBytes(18).toString('base64url');
}

export type Asset = { uri: string } | { inline: string };

export interface PageOptions {
  title: string;
  nonce: string;
  script: Asset;
  style: Asset;
  /** The webview's `cspSource`: lets the page load the extension's files (absent for a standalone page). */
  cspSource?: string;
  /** A session embedded in the page: it renders as a read-only report, with no host to talk to. */
  embedded?: unknown;
}


export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** JSON that can sit inside a <script> element: no `</script>`, no `<!--`, no U+2028/2029 line breaks. */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

export function contentSecurityPolicy(nonce: string, cspSource?: string): string {
  const own = cspSource ? `${cspSource} ` : '';
  const directives = ["default-src 'none'", `img-src ${own}data:`, `style-src ${own}'nonce-${nonce}'`, `script-src 'nonce-${nonce}'`];
  if (cspSource) directives.push(`font-src ${cspSource}`);
  return directives.join('; ');
}

export function dashboardPage(o: PageOptions): string {
  const n = escapeHtml(o.nonce);
  const style = 'uri' in o.style ? `<link rel="stylesheet" nonce="${n}" href="${escapeHtml(o.style.uri)}">` : `<style nonce="${n}">${o.style.inline.replace(/<\/style/gi, '<\\/style')}</style>`;
  const embedded = o.embedded === undefined ? '' : `<script type="application/json" id="${EMBEDDED_REPORT_ID}" nonce="${n}">${scriptSafeJson(o.embedded)}</script>\n`;
  const script = 'uri' in o.script
    ? `<script nonce="${n}" src="${escapeHtml(o.script.uri)}"></script>`
    : `<script nonce="${n}">${o.script.inline.replace(/<\/script/gi, '<\\/script')}</script>`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(contentSecurityPolicy(o.nonce, o.cspSource))}">
<meta property="csp-nonce" content="${n}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeHtml(o.title)}</title>
${style}
</head>
<body>
<main id="app" aria-live="polite"></main>
${embedded}${script}
</body>
</html>
`;
}
