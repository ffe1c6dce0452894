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
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const webDir = fileURLToPath(new URL('../web/', import.meta.url));
const outDir = fileURLToPath(new URL('../dist/web/', import.meta.url));
const started = Date.now();
const isAsset = (file) => file === 'index.html' || /\.(css|svg|png)$/.test(file);

// A clean folder, so that a page removed from web/ is not served from an old build.
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const entryPoints = [];
let copied = 0;
const copy = (from, to) => {
  copyFileSync(from, to);
  copied++;
};

for (const file of readdirSync(webDir)) {
  if (isAsset(file)) copy(join(webDir, file), join(outDir, file));
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
  const assets = files.filter(isAsset);
  if (assets.length > 0) mkdirSync(join(outDir, name), { recursive: true });
  for (const file of assets) copy(join(dir, file), join(outDir, name, file));
}

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
  `build-web: ${entryPoints.length} bundles, ${copied} files -> dist/web (${Date.now() - started} ms)`,
);
