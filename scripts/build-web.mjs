// Bundles the browser pages (web/) into dist/web with esbuild.
//
// Convention (every page follows it; src/server/web.ts serves the result):
// - web/<name>/main.ts             -> dist/web/<name>.js (+ .map): ESM, browser target, minified
// - web/<name>/*.worker.ts         -> dist/web/<name>/<stem>.worker.js: a Web Worker bundle
// - web/<name>/index.html          -> dist/web/<name>/index.html, served at /<name> (sender also at /send)
// - web/<name>/*.{css,svg,png}     -> dist/web/<name>/ (static assets)
// - web/*.{css,svg,png}           -> dist/web/ (site-wide assets); the viewer is also served at /
// Pages should reference assets by absolute path: /<name>.js, /<name>/style.css, /shared/style.css;
// /shared.js (web/shared/main.ts) carries a #token= fragment to the links between pages.
//
// Skipped when nothing changed (`npm run demo` and `npm test` run it every time): when dist/web
// holds exactly the files this build would write and the oldest is newer than every input (web/,
// src/ since pages bundle its modules, this script, package-lock.json for three and esbuild).
// `--force` builds anyway.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const webDir = fileURLToPath(new URL('../web/', import.meta.url));
const outDir = fileURLToPath(new URL('../dist/web/', import.meta.url));
const started = Date.now();
const isAsset = (file) => file === 'index.html' || /\.(css|svg|png)$/.test(file);

const rootDir = fileURLToPath(new URL('../', import.meta.url));

/** Every file under `dir` (absolute paths); none when it does not exist. */
const listFiles = (dir) => {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
};

// The plan: bundles to build and files to copy, from web/'s layout alone.
const entryPoints = [];
const copies = [];
for (const file of readdirSync(webDir)) {
  if (isAsset(file)) copies.push({ from: join(webDir, file), to: join(outDir, file) });
}
for (const name of readdirSync(webDir)) {
  const dir = join(webDir, name);
  if (!statSync(dir).isDirectory()) continue;
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`web/${name}: page names are [a-z0-9-]`);
  const files = readdirSync(dir);
  if (files.includes('main.ts')) entryPoints.push({ in: join(dir, 'main.ts'), out: name });
  for (const file of files) {
    if (file.endsWith('.worker.ts'))
      entryPoints.push({ in: join(dir, file), out: `${name}/${file.slice(0, -'.ts'.length)}` });
  }
  for (const file of files.filter(isAsset))
    copies.push({ from: join(dir, file), to: join(outDir, name, file) });
}

/** True when dist/web is exactly this plan's output and newer than every input. */
const upToDate = () => {
  const expected = new Set([
    ...entryPoints.flatMap(({ out }) => [`${out}.js`, `${out}.js.map`]),
    ...copies.map(({ to }) => relative(outDir, to).split(sep).join('/')),
  ]);
  const outputs = listFiles(outDir);
  const names = outputs.map((file) => relative(outDir, file).split(sep).join('/'));
  if (names.length !== expected.size || !names.every((name) => expected.has(name))) return false;
  const inputs = [
    ...listFiles(webDir),
    ...listFiles(join(rootDir, 'src')),
    fileURLToPath(import.meta.url),
    join(rootDir, 'package-lock.json'),
  ].filter((file) => existsSync(file));
  const newestInput = Math.max(...inputs.map((file) => statSync(file).mtimeMs));
  const oldestOutput = Math.min(...outputs.map((file) => statSync(file).mtimeMs));
  return oldestOutput > newestInput;
};

if (!process.argv.includes('--force') && upToDate()) {
  console.log(`build-web: dist/web is up to date (${Date.now() - started} ms)`);
  process.exit(0);
}

// A clean folder, so that a page removed from web/ is not served from an old build.
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
for (const { to } of copies) mkdirSync(join(to, '..'), { recursive: true });
for (const { from, to } of copies) copyFileSync(from, to);

if (entryPoints.length > 0) {
  await build({
    entryPoints,
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome120', 'firefox121', 'safari17'],
    minify: true,
    sourcemap: true,
    // The wire modules are written for NodeNext (imports end in .js); esbuild resolves them.
    tsconfig: join(webDir, 'tsconfig.json'),
    logLevel: 'warning',
    legalComments: 'none',
  });
}

console.log(
  `build-web: ${entryPoints.length} bundles, ${copies.length} files -> dist/web (${Date.now() - started} ms)`,
);
