import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The layering of ../shared/STYLE.md, checked on the source: imports point down the list, the
 * bottom layers import nothing above them, only `cli` reaches `commands`, only `commands` (and
 * `cli`) reach `app`, and the runtime import graph has no cycle.
 */

const SRC = fileURLToPath(new URL('../src', import.meta.url));

interface Edge {
  from: string;
  to: string;
  /** Erased at compile time (`import type`, or every imported name marked `type`). */
  typeOnly: boolean;
  dynamic: boolean;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.tsx?$/.test(e.name) && !e.name.endsWith('.d.ts'))
    .map((e) => relative(SRC, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

/** `./x.js` -> `dir/x.ts` (or .tsx, or a folder's index); null for packages and builtins. */
function resolveSpecifier(from: string, specifier: string): string | null {
  if (!specifier.startsWith('.')) return null;
  const base = resolve(SRC, dirname(from), specifier).replace(/\.js$/, '');
  const candidates = [`${base}.ts`, `${base}.tsx`, join(base, 'index.ts'), join(base, 'index.tsx')];
  // A target that does not exist yet still belongs to a layer: keep the .ts guess.
  const found = candidates.find((c) => existsSync(c)) ?? candidates[0]!;
  return relative(SRC, found).split(sep).join('/');
}

function isTypeOnlyImport(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) return false; // `import './x.js'` runs the module
  if (clause.isTypeOnly) return true;
  // TypeScript erases an import whose every binding is `type` (no default, no namespace).
  const bindings = clause.namedBindings;
  return !clause.name && bindings !== undefined && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly);
}

/** Every import of `file` that lands in src: static, re-exports and dynamic import(). */
function importsOf(file: string): Edge[] {
  const text = readFileSync(join(SRC, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, file.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS);
  const edges: Edge[] = [];
  const add = (specifier: ts.Expression | undefined, typeOnly: boolean, dynamic: boolean) => {
    if (!specifier || !ts.isStringLiteralLike(specifier)) return;
    const to = resolveSpecifier(file, specifier.text);
    if (to) edges.push({ from: file, to, typeOnly, dynamic });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) add(node.moduleSpecifier, isTypeOnlyImport(node), false);
    else if (ts.isExportDeclaration(node)) add(node.moduleSpecifier, node.isTypeOnly, false);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) add(node.moduleReference.expression, node.isTypeOnly, false);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0], false, true);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal, true, false);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

/** `scanner/engine.ts` -> `scanner`; a file directly in src is its own layer. */
function layerOf(file: string): string {
  const slash = file.indexOf('/');
  return slash < 0 ? file.replace(/\.tsx?$/, '') : file.slice(0, slash);
}

const describeEdge = (e: Edge) => `${e.from} -> ${e.to}${e.typeOnly ? ' (type)' : ''}${e.dynamic ? ' (dynamic)' : ''}`;

/** One cycle per back edge found by a depth-first search, each as the list of files around it. */
function findCycles(files: readonly string[], edges: readonly Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const to of next.get(file) ?? []) {
      if (state.get(to) === 'open') cycles.push([...stack.slice(stack.indexOf(to)), to]);
      else if (!state.has(to)) visit(to);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of files) if (!state.has(file)) visit(file);
  return cycles;
}

const files = sourceFiles(SRC);
const edges = files.flatMap(importsOf);

/** Each bottom layer may import only itself and the layers listed before it. */
const BOTTOM = ['domain', 'errors', 'config', 'observability'] as const;

/** STYLE.md's layout, top to bottom; imports point down it. */
const LAYOUT = ['cli', 'commands', 'app', 'http', 'queue', 'scanner', 'reporters', 'clients', 'alerts', 'diagnostics', 'tui', 'observability', 'config', 'errors', 'domain'];


describe('architecture (STYLE.md layering)', () => {
  it('reads the import graph (sanity: the CLI reaches the scan command lazily)', () => {
    expect(files).toContain('cli/main.ts');
    expect(edges).toContainEqual({ from: 'cli/main.ts', to: 'commands/scan.ts', typeOnly: false, dynamic: true });
  });

  it.each(BOTTOM.map((layer, i) => [layer, BOTTOM.slice(0, i + 1)] as const))('%s imports only from %j', (layer, allowed) => {
    const bad = edges.filter((e) => layerOf(e.from) === layer && !(allowed as readonly string[]).includes(layerOf(e.to)));
    expect(bad.map(describeEdge)).toEqual([]);
  });

  it('nothing but cli (and commands themselves) imports commands', () => {
    const bad = edges.filter((e) => layerOf(e.to) === 'commands' && !['cli', 'commands'].includes(layerOf(e.from)));
    expect(bad.map(describeEdge)).toEqual([]);
  });

  it('only commands and cli import app', () => {
    const bad = edges.filter((e) => layerOf(e.to) === 'app' && !['app', 'commands', 'cli'].includes(layerOf(e.from)));
    expect(bad.map(describeEdge)).toEqual([]);
  });

  it('imports point down the STYLE.md layout', () => {
    const rank = (file: string) => LAYOUT.indexOf(layerOf(file));
    const up = edges.filter((e) => rank(e.from) >= 0 && rank(e.to) >= 0 && rank(e.to) < rank(e.from));
    expect(up.map(describeEdge)).toEqual([]);
  });

  it('has no import cycle (type-only imports excluded: they are erased at runtime)', () => {
    const runtime = edges.filter((e) => !e.typeOnly);
    expect(findCycles(files, runtime).map((c) => c.join(' -> '))).toEqual([]);
  });
});
