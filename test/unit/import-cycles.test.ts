/**
 * No import cycles in the source, type-only ones included (`import type`, `export ... from`):
 * layers stay one-way. The graph comes from TypeScript's own import scanner.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const SCOPE = ['src', 'web'];

function sourceFiles(path: string): string[] {
  if (/\.ts$/.test(path)) return [path];
  return readdirSync(path, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() || /\.ts$/.test(entry.name) ? sourceFiles(join(path, entry.name)) : [],
  );
}

/** Each file's relative imports that land on another file in the set. */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets = importedFiles
      .filter(({ fileName }) => fileName.startsWith('.'))
      .map(({ fileName }) => resolve(dirname(file), fileName).replace(/\.js$/, '.ts'))
      .filter((target) => known.has(target));
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** Strongly connected components of more than one file (or a file importing itself). */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const order = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (file: string): void => {
    order.set(file, order.size);
    low.set(file, order.get(file) as number);
    stack.push(file);
    onStack.add(file);
    for (const next of graph.get(file) ?? []) {
      if (!order.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file) as number, low.get(next) as number));
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file) as number, order.get(next) as number));
      }
    }
    if (low.get(file) !== order.get(file)) return;
    const component: string[] = [];
    for (;;) {
      const member = stack.pop() as string;
      onStack.delete(member);
      component.push(member);
      if (member === file) break;
    }
    if (component.length > 1 || graph.get(file)?.includes(file)) found.push(component);
  };
  for (const file of graph.keys()) if (!order.has(file)) visit(file);
  return found;
}

void test('no import cycles, type-only imports included', () => {
  const files = SCOPE.flatMap((path) => sourceFiles(join(ROOT, path)));
  assert.ok(files.length > 50, `only ${files.length} files found`);
  const found = cycles(importGraph(files)).map((component) =>
    component.map((file) => relative(ROOT, file)).sort(),
  );
  assert.deepEqual(found, []);
});

void test('the cycle check sees a type-only cycle', () => {
  const graph = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
    ['d', ['a']],
  ]);
  assert.deepEqual(
    cycles(graph).map((component) => component.sort()),
    [['a', 'b', 'c']],
  );
  // The scanner reports `import type` and `export ... from` like any import.
  const { importedFiles } = ts.preProcessFile(
    "import type { A } from './a.js';\nexport { B } from './b.js';\n",
    true,
    true,
  );
  assert.deepEqual(
    importedFiles.map(({ fileName }) => fileName),
    ['./a.js', './b.js'],
  );
});
