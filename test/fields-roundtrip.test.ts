/**
 * Issue 18's acceptance: every Python-written file of test/fixtures/fields (make_fixtures.py)
 * goes through `pointstream send --from` (the CLI, as users type it) to a server that records
 * (`serve --record`), and NumPy loads the recording back: a structured `.npy` whose x, y, z and
 * every field equal what the script wrote, bit for bit with raw frames, and within the stated
 * precision for q16/qrice with `--field-precision` (fields without one: lossless, bit for bit).
 *
 * Needs the whole of issue 18: the wire (fields in frames), the recorder (structured .npy) and
 * the codec (coded fields). Run: npm run build && node --import tsx --test
 * --test-timeout=180000 test/fields-roundtrip.test.ts
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { test } from 'node:test';
import { FIELD_FIXTURES, FIELD_FIXTURES_DIR } from './support/field-fixtures.js';
import type { FieldFixture } from './support/field-fixtures.js';
import { findPython, lastJsonLine, runCli, startServer } from './helpers.js';

/**
 * numpy: the recorded frame against the script's expected arrays. Prints what it checked; any
 * difference is an AssertionError naming the field and the first row that differs.
 */
const CHECK = `
import json, os, sys
import numpy as np
recorded, expected_dir, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
r = np.load(recorded)
names = [f["name"] for f in config["fields"]]
assert r.dtype.names == tuple(["x", "y", "z"] + names), ("fields recorded", r.dtype.names, names)
for axis in "xyz":
    assert r.dtype[axis].str == "<f4", (axis, r.dtype[axis].str)
points = np.load(os.path.join(expected_dir, "points.npy"))
rows = np.isfinite(points).all(axis=1) if config["dropNonFinite"] else np.ones(len(points), bool)
assert r.shape == (int(rows.sum()),), ("rows", r.shape, int(rows.sum()))
got = np.stack([r["x"], r["y"], r["z"]], axis=1)
want = points[rows]
bound = config["pointPrecision"]
if bound is None:
    assert got.tobytes() == want.tobytes(), ("x, y, z differ", np.argwhere(got != want)[:3].tolist())
else:
    err = np.abs(got.astype("<f8") - want.astype("<f8"))
    assert (err <= bound * (1 + 1e-6) + 1e-9).all(), ("x, y, z error", float(err.max()), bound)
checked = []
for f in config["fields"]:
    name, dtype = f["name"], f["dtype"]
    assert r.dtype[name].str == dtype, (name, r.dtype[name].str, dtype)
    want = np.load(os.path.join(expected_dir, name + ".npy"))[rows]
    got = np.ascontiguousarray(r[name])
    step = config["fieldPrecision"].get(name)
    if step is None:
        same = got.tobytes() == want.tobytes()
        assert same, (name, "differs at", np.argwhere(got != want)[:3].tolist())
        checked.append([name, "exact"])
    else:
        err = np.abs(got.astype("<f8") - want.astype("<f8"))
        # The bound, plus one rounding of the decoded value to its type.
        slack = step + np.finfo(want.dtype).eps * np.abs(want.astype("<f8"))
        assert (err <= slack).all(), (name, "error", float(err.max()), "bound", step)
        checked.append([name, float(err.max())])
print(json.dumps({"rows": int(r.shape[0]), "checked": checked}))
`;

interface Run {
  readonly encoding: 'raw' | 'q16' | 'qrice';
  readonly fieldPrecision: Readonly<Record<string, number>>;
}

/** Raw for every file; qrice with the file's --field-precision; q16 for two of them. */
function runsOf(fixture: FieldFixture): Run[] {
  const runs: Run[] = [{ encoding: 'raw', fieldPrecision: {} }];
  runs.push({ encoding: 'qrice', fieldPrecision: fixture.fieldPrecision });
  if (fixture.file === 'structured.npy' || fixture.file === 'cloud_compressed_lzf.pcd')
    runs.push({ encoding: 'q16', fieldPrecision: fixture.fieldPrecision });
  return runs;
}

const QRICE_PRECISION = 0.001;

void test(
  'every fixture: send --from -> serve --record -> numpy.load gives every field back',
  { timeout: 600_000 },
  async (t) => {
    const python = findPython('numpy');
    const recordings = mkdtempSync(join(tmpdir(), 'pointstream-fields-rec-'));
    const server = await startServer({ record: { dir: recordings } });
    t.after(async () => {
      await server.close();
      rmSync(recordings, { recursive: true, force: true });
    });
    let index = 0;
    for (const fixture of FIELD_FIXTURES) {
      for (const run of runsOf(fixture)) {
        const what = `${fixture.file} (${run.encoding}${Object.keys(run.fieldPrecision).length > 0 ? ` ${JSON.stringify(run.fieldPrecision)}` : ''})`;
        const precisionFlag = Object.entries(run.fieldPrecision)
          .map(([name, error]) => `${name}=${error}`)
          .join(',');
        const result = await runCli([
          'send',
          '--signaling',
          server.url,
          '--stream',
          `fields-${index++}`,
          '--from',
          join(FIELD_FIXTURES_DIR, fixture.file),
          ...fixture.args,
          '--encoding',
          run.encoding,
          ...(run.encoding === 'qrice' ? ['--precision', String(QRICE_PRECISION)] : []),
          ...(precisionFlag === '' || run.encoding === 'raw'
            ? []
            : ['--field-precision', precisionFlag]),
          '--frames',
          '1',
          '--rate',
          '0',
          '--json',
        ]);
        assert.equal(result.code, 0, `${what}: ${result.stderr}\n${result.stdout}`);
        const summary = lastJsonLine(result.stdout) as {
          ok: boolean;
          recording?: string;
          maxError: number;
          fields: { name: string; type: string; maxError: number }[];
        };
        assert.equal(summary.ok, true, what);
        assert.deepEqual(
          summary.fields.map((f) => f.name),
          fixture.fields.map((f) => f.name),
          `${what}: the summary lists the fields sent`,
        );
        // Each field's error bound: above 0 only where --field-precision asked, never above it.
        const asked: Readonly<Record<string, number>> =
          run.encoding === 'raw' ? {} : run.fieldPrecision;
        for (const field of summary.fields) {
          const precision = asked[field.name];
          if (precision === undefined) assert.equal(field.maxError, 0, `${what}: ${field.name}`);
          else assert.ok(field.maxError <= precision, `${what}: ${field.name} ${field.maxError}`);
        }
        assert.ok(summary.recording !== undefined, `${what}: the server records`);
        const folder = isAbsolute(summary.recording)
          ? summary.recording
          : join(recordings, summary.recording);
        const recorded = join(folder, `${'0'.repeat(12)}.npy`);
        assert.ok(
          existsSync(recorded),
          `${what}: ${recorded} (the folder holds ${existsSync(folder) ? readdirSync(folder).join(', ') : 'nothing'})`,
        );
        const config = {
          fields: fixture.fields,
          dropNonFinite: fixture.args.includes('--drop-non-finite'),
          pointPrecision:
            run.encoding === 'raw'
              ? null
              : run.encoding === 'qrice'
                ? QRICE_PRECISION
                : summary.maxError,
          fieldPrecision: run.encoding === 'raw' ? {} : run.fieldPrecision,
        };
        let checked: string;
        try {
          checked = execFileSync(
            python,
            [
              '-c',
              CHECK,
              recorded,
              join(FIELD_FIXTURES_DIR, 'expected', fixture.file),
              JSON.stringify(config),
            ],
            { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
          );
        } catch (error) {
          assert.fail(`${what}: ${(error as { stderr?: string }).stderr ?? String(error)}`);
        }
        const report = JSON.parse(checked) as { rows: number; checked: [string, unknown][] };
        assert.equal(report.checked.length, fixture.fields.length, what);
      }
    }
  },
);
