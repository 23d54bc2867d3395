// A small element builder. The dashboard builds its DOM with createElement only: the page's CSP forbids inline style
// attributes and inline handlers, and text set through textContent can never be read as markup.

type Child = Node | string | number | null | undefined | false;
type AttrValue = string | number | boolean | null | undefined;
/** Attributes by name; `on` holds event listeners by event name. */
export type Attrs = { [name: string]: AttrValue | Record<string, (e: Event) => void> };

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K];
export function h(tag: string, attrs?: Attrs | null, ...children: Child[]): HTMLElement;
export function h(tag: string, attrs?: Attrs | null, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (k === 'on') {
      for (const [event, fn] of Object.entries(v as Record<string, (e: Event) => void>)) el.addEventListener(event, fn);
    } else if (typeof v === 'object' && v !== null) {
      throw new Error(`attribute ${k} of <${tag}> must be a string, number or boolean`);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else if (v !== false && v !== null && v !== undefined) {
      el.setAttribute(k, String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A table with a header row; each row is a list of cells (strings, numbers or nodes). */
export function table(caption: string, head: string[], rows: Child[][], attrs: Attrs = {}): HTMLTableElement {
  return h(
    'table',
    attrs,
    h('caption', null, caption),
    h('thead', null, h('tr', null, ...head.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', null, ...rows.map((r) => h('tr', null, ...r.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', null, c)))))),
  );
}
