import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

// The package as npm ships it and as a user builds it. Everything runs in a copy of the project
// (with the shared node_modules linked), so that rebuilding never disturbs the dist/ that other
// test files read at the same time.

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const COPIED = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'LICENSE',
  'CHANGELOG.md',
  'README.md',
  'docs',
  'src',
  'web',
  'scripts',
];

let dir = '';

/** Every file under `root` as a relative path with forward slashes, with its mtime. */
function mtimes(root: string): Map<string, number> {
  const found = new Map<string, number>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    found.set(relative(root, full).split(sep).join('/'), statSync(full).mtimeMs);
  }
  return found;
}

async function npm(...args: string[]): Promise<string> {
  const { stdout } = await run('npm', args, { cwd: dir, maxBuffer: 64 << 20 });
  return stdout;
}

interface PackedFile {
  path: string;
  size: number;
}

before(
  async () => {
    dir = mkdtempSync(join(tmpdir(), 'pointstream-pkg-'));
    for (const name of COPIED) {
      // A missing file is the tests' to report, not the copy's.
      if (existsSync(join(ROOT, name)))
        cpSync(join(ROOT, name), join(dir, name), { recursive: true });
    }
    symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(dir, 'node_modules'));
    await npm('run', 'build', '--silent');
  },
  { timeout: 150_000 },
);

after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

void test(
  'a build with nothing changed writes nothing; a changed page rebuilds only the pages',
  { timeout: 120_000 },
  async () => {
    const built = mtimes(join(dir, 'dist'));
    assert.ok(
      built.has('cli/main.js') && built.has('web/viewer.js'),
      'the first build wrote dist/',
    );

    const output = await npm('run', 'build', '--silent');
    assert.match(output, /dist\/web is up to date/);
    const again = mtimes(join(dir, 'dist'));
    assert.deepEqual([...again.keys()].sort(), [...built.keys()].sort());
    const rewritten = [...again].filter(([file, mtime]) => built.get(file) !== mtime);
    assert.deepEqual(rewritten, [], 'no output rewritten when no input changed');

    // An edited stylesheet makes the pages stale (and only them: tsc has nothing to do).
    const later = new Date(Date.now() + 2000);
    utimesSync(join(dir, 'web/viewer/style.css'), later, later);
    await npm('run', 'build', '--silent');
    const rebuilt = mtimes(join(dir, 'dist'));
    assert.notEqual(rebuilt.get('web/viewer/style.css'), again.get('web/viewer/style.css'));
    assert.notEqual(rebuilt.get('web/viewer.js'), again.get('web/viewer.js'));
    assert.equal(rebuilt.get('cli/main.js'), again.get('cli/main.js'));
  },
);

void test(
  'npm pack ships the licence, the changelog and self-contained source maps',
  { timeout: 90_000 },
  async () => {
    const [packed] = JSON.parse(await npm('pack', '--dry-run', '--json', '--ignore-scripts')) as [
      { files: PackedFile[] },
    ];
    assert.ok(packed);
    const files = new Set(packed.files.map((file) => file.path));
    for (const file of ['LICENSE', 'CHANGELOG.md', 'README.md', 'package.json', 'dist/cli/main.js'])
      assert.ok(files.has(file), `${file} is in the package`);
    for (const file of files) {
      assert.ok(!file.endsWith('.tsbuildinfo'), `${file}: build state is not shipped`);
      assert.ok(!file.startsWith('test/') && !file.startsWith('src/'), `${file} is not shipped`);
    }

    // A map whose sources are neither in the package nor inlined is broken for whoever debugs.
    const maps = [...files].filter((file) => file.endsWith('.map'));
    assert.ok(maps.length > 0);
    for (const map of maps) {
      const { sources, sourcesContent } = JSON.parse(readFileSync(join(dir, map), 'utf8')) as {
        sources: string[];
        sourcesContent?: (string | null)[];
      };
      sources.forEach((source, i) => {
        const shipped = files.has(join(dirname(map), source).split(sep).join('/'));
        const inlined = typeof sourcesContent?.[i] === 'string';
        assert.ok(shipped || inlined, `${map}: ${source} is neither shipped nor inlined`);
      });
    }

    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(pkg.license, 'MIT');
    assert.match(readFileSync(join(dir, 'LICENSE'), 'utf8'), /^MIT License\n/);
    assert.ok(Array.isArray(pkg.keywords) && pkg.keywords.length > 0, 'keywords');
    assert.equal(typeof pkg.author, 'string');
    assert.ok(pkg.repository !== undefined, 'repository');
  },
);

void test('every runtime dependency is used by the code that runs', { timeout: 90_000 }, () => {
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  // The compiled code, not the pages (dist/web bundles what they need at build time).
  const code = [...mtimes(join(dir, 'dist')).keys()]
    .filter((file) => file.endsWith('.js') && !file.startsWith('web/'))
    .map((file) => readFileSync(join(dir, 'dist', file), 'utf8'))
    .join('\n');
  const unused = Object.keys(pkg.dependencies).filter(
    (name) =>
      !new RegExp(`['"]${name.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}(/[^'"]*)?['"]`).test(code),
  );
  assert.deepEqual(unused, [], 'dependencies that no runtime module imports');
});

void test(
  '--version, package.json and the CHANGELOG name the same version',
  { timeout: 90_000 },
  async () => {
    const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      version: string;
    };
    const { stdout } = await run(process.execPath, [join(dir, 'dist/cli/main.js'), '--version']);
    assert.equal(stdout.trim(), version);
    const changelog = readFileSync(join(dir, 'CHANGELOG.md'), 'utf8');
    assert.match(changelog, new RegExp(`^## ${version.replaceAll('.', '\\.')}\\b`, 'm'));
  },
);

void test(
  "the README's npx pointstream works in a clone after npm install",
  { timeout: 90_000 },
  async () => {
    // npm exec links the project itself (it is not in node_modules/.bin); a private cache and
    // --offline keep it from touching the user's cache or the registry.
    const cache = join(dir, '.npm-cache');
    const { stdout } = await run('npx', ['--offline', '--cache', cache, 'pointstream', '--help'], {
      cwd: dir,
    });
    assert.match(stdout, /^Usage: pointstream /);
    assert.match(stdout, /\bserve\b/);
    assert.match(stdout, /\bsend\b/);
    assert.ok(existsSync(cache));

    // The quick start shows exactly that form: serve, send, open the viewer.
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    const start = readme.slice(readme.indexOf('## Quick start'));
    assert.match(start, /^npx pointstream serve\b/m);
    assert.match(start, /^npx pointstream send --signaling http:\/\/127\.0\.0\.1:8080\//m);
    assert.match(start, /open http:\/\/127\.0\.0\.1:8080\//);
  },
);
