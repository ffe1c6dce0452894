/**
 * A tiny logic-less template renderer (a subset of Mustache) for the bench report: the prose lives
 * in bench/lib/report.md, the numbers come from the results.
 *
 * - `{{name}}` / `{{a.b}}`: a value of the view (looked up from the innermost section outwards),
 *   inserted as it is (no escaping: the output is markdown). Missing, null or a boolean: nothing;
 *   an object: an error. `{{.}}`: the current item.
 * - `{{#name}}...{{/name}}`: rendered once per item of an array, once with an object as the new
 *   context, once for any other truthy value; not at all for a falsy value or an empty array.
 * - `{{^name}}...{{/name}}`: rendered when `name` is falsy or an empty array.
 * - `{{! comment }}`: nothing.
 * A line holding nothing but a section or comment tag disappears with its line break.
 */

export type View = { readonly [key: string]: unknown };

const TAG = /{{([#^/!]?)\s*([^}]*?)\s*}}/g;
const STANDALONE = /^[ \t]*({{[#^/!][^}]*}})[ \t]*\r?\n/gm;

interface Node {
  readonly kind: 'text' | 'value' | 'section' | 'inverted';
  readonly text: string;
  readonly children: Node[];
}

function parse(template: string): Node[] {
  const root: Node[] = [];
  const stack: { name: string; children: Node[] }[] = [{ name: '', children: root }];
  const source = template.replace(STANDALONE, '$1');
  let at = 0;
  for (const match of source.matchAll(TAG)) {
    const top = stack.at(-1) as { name: string; children: Node[] };
    if (match.index > at)
      top.children.push({ kind: 'text', text: source.slice(at, match.index), children: [] });
    at = match.index + match[0].length;
    const [, sigil, name = ''] = match;
    if (sigil === '!') continue;
    if (sigil === '#' || sigil === '^') {
      const children: Node[] = [];
      top.children.push({ kind: sigil === '#' ? 'section' : 'inverted', text: name, children });
      stack.push({ name, children });
    } else if (sigil === '/') {
      if (stack.length === 1 || top.name !== name)
        throw new Error(
          `template: {{/${name}}} closes ${top.name ? `{{#${top.name}}}` : 'nothing'}`,
        );
      stack.pop();
    } else {
      top.children.push({ kind: 'value', text: name, children: [] });
    }
  }
  if (stack.length > 1) throw new Error(`template: {{#${stack.at(-1)?.name}}} is not closed`);
  if (at < source.length) root.push({ kind: 'text', text: source.slice(at), children: [] });
  return root;
}

function lookup(contexts: readonly unknown[], name: string): unknown {
  if (name === '.') return contexts.at(-1);
  const [head = '', ...rest] = name.split('.');
  for (let i = contexts.length - 1; i >= 0; i--) {
    const context = contexts[i];
    if (typeof context === 'object' && context !== null && head in context) {
      let value: unknown = (context as View)[head];
      for (const key of rest) value = (value as View | undefined)?.[key];
      return value;
    }
  }
  return undefined;
}

function renderNodes(nodes: readonly Node[], contexts: readonly unknown[]): string {
  let out = '';
  for (const node of nodes) {
    if (node.kind === 'text') {
      out += node.text;
      continue;
    }
    const value = lookup(contexts, node.text);
    const empty = !value || (Array.isArray(value) && value.length === 0);
    if (node.kind === 'value') {
      if (typeof value === 'string' || typeof value === 'number') out += String(value);
      else if (value !== undefined && value !== null && typeof value !== 'boolean')
        throw new Error(`template: {{${node.text}}} is an object, not a value`);
    } else if (node.kind === 'inverted') {
      if (empty) out += renderNodes(node.children, contexts);
    } else if (!empty) {
      const items: unknown[] = Array.isArray(value) ? value : [value];
      for (const item of items) {
        const inner = [...contexts, item];
        out += renderNodes(node.children, inner);
      }
    }
  }
  return out;
}

/** Renders `template` with the values of `view`. */
export function renderTemplate(template: string, view: View): string {
  return renderNodes(parse(template), [view]);
}
