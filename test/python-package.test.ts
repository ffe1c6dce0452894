import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/index.js';
import type { PointstreamServer } from '../src/index.js';
import { CLI, LOOPBACK, captureSessions, findPython, runProcess, startServer } from './helpers.js';

/**
 * The Python package in python/ (issue 19), with Debian's python3, numpy and aiortc: installed with
 * pip (no network), its client against a real server on 127.0.0.1, its CLI, and the live-frames
 * endpoints read from Python while a Node client streams.
 */

const PACKAGE = fileURLToPath(new URL('../python', import.meta.url));
const TOKEN = 'python-package-token-0001';
const OTHER_TOKEN = 'python-package-token-0002';

function tempDir(t: { after(fn: () => void): void }, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pointstream-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

let installed: Promise<{ python: string; site: string; source: string }> | undefined;

/** Installs the package once (pip, `--no-build-isolation --no-deps --target`, from a copy). */
function install(): Promise<{ python: string; site: string; source: string }> {
  installed ??= (async () => {
    const python = findPython('aiortc, numpy, setuptools');
    const dir = mkdtempSync(join(tmpdir(), 'pointstream-pip-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const source = join(dir, 'src');
    cpSync(PACKAGE, source, {
      recursive: true,
      filter: (path) => !/(__pycache__|\.egg-info|[/\\]build)$/.test(path),
    });
    const site = join(dir, 'site');
    const pip = await runProcess(
      python,
      [
        '-m',
        'pip',
        'install',
        '--no-build-isolation',
        '--no-deps',
        '--no-index',
        '--target',
        site,
        source,
      ],
      { timeoutMs: 120_000 },
    );
    assert.equal(pip.code, 0, `pip install failed:\n${pip.stdout}\n${pip.stderr}`);
    return { python, site, source };
  })();
  return installed;
}

/** Runs Python code with the installed package; returns its last stdout line as JSON. */
async function py(
  code: string,
  args: string[] = [],
  timeoutMs = 120_000,
): Promise<{ code: number | null; json: Record<string, unknown>; stderr: string }> {
  const { python, site } = await install();
  const result = await runProcess(python, ['-c', code, ...args], {
    env: { PYTHONPATH: site },
    timeoutMs,
  });
  const lines = result.stdout.trim().split('\n');
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(lines[lines.length - 1] ?? '{}') as Record<string, unknown>;
  } catch {
    // asserted by the caller through `code` and `stderr`
  }
  return { code: result.code, json, stderr: result.stderr };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function pointsBytes(points: Float32Array): Uint8Array {
  return new Uint8Array(points.buffer, points.byteOffset, points.byteLength);
}

/** sha256 of each verified frame's float32 x, y, z bytes, by seq. */
function frameDigests(server: PointstreamServer): Map<number, string> {
  const digests = new Map<number, string>();
  server.on('frame', (frame) => digests.set(frame.seq, sha256(pointsBytes(frame.points))));
  return digests;
}

void test(
  "the package's own unit tests (wire bytes, errors) pass against the installed package",
  { timeout: 60_000 },
  async () => {
    const { python, site, source } = await install();
    const result = await runProcess(
      python,
      ['-m', 'unittest', 'discover', '-s', join(source, 'tests')],
      {
        env: { PYTHONPATH: site },
      },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /Ran \d+ tests[\s\S]*OK/);
  },
);

const SENDER = `
import hashlib, json, sys
import numpy as np
import pointstream
url, stream, plain = sys.argv[1], sys.argv[2], sys.argv[3] == "plain"
rng = np.random.default_rng(19)
out = {"frames": [], "file": pointstream.__file__}
with pointstream.connect(url, stream=stream, plain=plain, host_addresses=["127.0.0.1"]) as client:
    for k in range(3):
        points = rng.standard_normal((1_000_000, 3)) * 50      # float64: sent as float32
        if k == 1:
            points = points.astype(np.float32)
        r = client.send(points)
        f32 = np.ascontiguousarray(points, dtype="<f4")
        out["frames"].append({"seq": r.seq, "ok": r.ok, "points": r.points,
                              "sha256": hashlib.sha256(f32.tobytes()).hexdigest()})
    out["session"], out["stream"] = client.session, client.stream
    out["stats"] = {"acked": client.stats.frames_acked, "lost": client.stats.frames_lost}
print(json.dumps(out))
`;

for (const form of ['chunked', 'plain'] as const) {
  void test(
    `the package's client sends 1M-point frames (${form} form) that arrive bit-exact`,
    { timeout: 180_000 },
    async (t) => {
      const server = await startServer({
        ...(form === 'plain' ? { limits: { maxPlainMessageBytes: 16 * 1024 * 1024 } } : {}),
      });
      t.after(() => server.close());
      const digests = frameDigests(server);
      const run = await py(SENDER, [server.url, `py-${form}`, form]);
      assert.equal(run.code, 0, run.stderr);
      const out = run.json as {
        frames: { seq: number; ok: boolean; points: number; sha256: string }[];
        file: string;
        stream: string;
        stats: { acked: number; lost: number };
      };
      assert.ok(!out.file.startsWith(PACKAGE), `imported from the pip install: ${out.file}`);
      assert.equal(out.stream, `py-${form}`);
      assert.deepEqual(out.stats, { acked: 3, lost: 0 });
      assert.deepEqual(
        out.frames.map((f) => [f.seq, f.ok, f.points]),
        [0, 1, 2].map((seq) => [seq, true, 1_000_000]),
      );
      for (const frame of out.frames) assert.equal(digests.get(frame.seq), frame.sha256);
    },
  );
}

const FIELDS_SENDER = `
import hashlib, json, sys, time
import numpy as np
import pointstream
url, stream, plain = sys.argv[1], sys.argv[2], sys.argv[3] == "plain"
rng = np.random.default_rng(1919)
n = 200_000
def digests(xyz, fields):
    out = {"xyz": hashlib.sha256(np.ascontiguousarray(xyz, dtype="<f4").tobytes()).hexdigest()}
    for name, values in fields.items():
        out[name] = hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()
    return out
def latest_of(seq):
    deadline = time.monotonic() + 10
    while True:
        frame = pointstream.latest(url, stream)
        if frame.meta["seq"] == seq or time.monotonic() > deadline:
            return frame.points
        time.sleep(0.05)
out = {"frames": [], "latest": []}
with pointstream.connect(url, stream=stream, plain=plain, host_addresses=["127.0.0.1"]) as client:
    # A structured array, as a LiDAR driver or numpy.load gives it.
    sent = np.zeros(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4"), ("ring", "<u2"), ("time", "<f8")])
    xyz = (rng.standard_normal((n, 3)) * 50).astype("<f4")
    sent["x"], sent["y"], sent["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    sent["intensity"] = rng.random(n)
    sent["ring"] = rng.integers(0, 65536, n)
    sent["time"] = 1.7e12 + rng.random(n) * 100
    r = client.send(sent)
    out["frames"].append({"seq": r.seq, "ok": r.ok, "points": r.points,
                          "digests": digests(xyz, {k: sent[k] for k in ("intensity", "ring", "time")})})
    got = latest_of(r.seq)
    out["latest"].append({"dtype": got.dtype.descr, "equal": got.dtype == sent.dtype and got.tobytes() == sent.tobytes()})
    # An (N, 3) float64 array and fields=, in other byte orders and types (converted).
    points = rng.standard_normal((n, 3)) * 50
    fields = {"intensity": rng.random(n).astype(">f4"), "ring": rng.integers(0, 65536, n).astype(">u2"),
              "time": 1.7e12 + rng.random(n) * 100}
    r = client.send(points, fields=fields)
    as_sent = {"intensity": fields["intensity"].astype("<f4"), "ring": fields["ring"].astype("<u2"), "time": fields["time"]}
    out["frames"].append({"seq": r.seq, "ok": r.ok, "points": r.points, "digests": digests(points, as_sent)})
    got = latest_of(r.seq)
    out["latest"].append({
        "dtype": got.dtype.descr,
        "equal": got.dtype.names == ("x", "y", "z", "intensity", "ring", "time")
        and np.array_equal(np.stack([got["x"], got["y"], got["z"]], axis=1), points.astype("<f4"))
        and all(got[k].dtype == v.dtype and np.array_equal(got[k], v) for k, v in as_sent.items()),
    })
    # A server whose hello lacks "fields": true: refused before anything is sent.
    client._client._connection.fields = False
    try:
        client.send(sent)
    except pointstream.PointstreamError as error:
        out["unsupported"] = error.code
    out["xyz_still"] = client.send(xyz).ok
    out["stats"] = {"acked": client.stats.frames_acked, "sent": client.stats.frames_sent, "lost": client.stats.frames_lost}
print(json.dumps(out))
`;

for (const form of ['chunked', 'plain'] as const) {
  void test(
    `the package's client sends per-point fields (${form} form): bit-exact columns on the server, latest() gives them back`,
    { timeout: 180_000 },
    async (t) => {
      const server = await startServer({
        ...(form === 'plain' ? { limits: { maxPlainMessageBytes: 16 * 1024 * 1024 } } : {}),
      });
      t.after(() => server.close());
      const received = new Map<number, Record<string, string>>();
      const types = new Map<number, Record<string, string>>();
      server.on('frame', (frame) => {
        const digests: Record<string, string> = { xyz: sha256(pointsBytes(frame.points)) };
        const names: Record<string, string> = {};
        for (const [name, column] of Object.entries(frame.fields ?? {})) {
          digests[name] = sha256(
            new Uint8Array(column.buffer, column.byteOffset, column.byteLength),
          );
          names[name] = column.constructor.name;
        }
        received.set(frame.seq, digests);
        types.set(frame.seq, names);
      });
      const run = await py(FIELDS_SENDER, [server.url, `py-fields-${form}`, form]);
      assert.equal(run.code, 0, run.stderr);
      const out = run.json as {
        frames: { seq: number; ok: boolean; points: number; digests: Record<string, string> }[];
        latest: { dtype: unknown; equal: boolean }[];
        unsupported: string;
        xyz_still: boolean;
        stats: { acked: number; sent: number; lost: number };
      };
      assert.deepEqual(
        out.frames.map((f) => [f.seq, f.ok, f.points]),
        [0, 1].map((seq) => [seq, true, 200_000]),
      );
      for (const { seq, digests } of out.frames) {
        assert.deepEqual(received.get(seq), digests, `frame ${seq}`);
        assert.deepEqual(types.get(seq), {
          intensity: 'Float32Array',
          ring: 'Uint16Array',
          time: 'Float64Array',
        });
      }
      const descr = [
        ['x', '<f4'],
        ['y', '<f4'],
        ['z', '<f4'],
        ['intensity', '<f4'],
        ['ring', '<u2'],
        ['time', '<f8'],
      ];
      assert.deepEqual(out.latest, [
        { dtype: descr, equal: true },
        { dtype: descr, equal: true },
      ]);
      assert.equal(out.unsupported, 'PS_ERR_FIELDS_UNSUPPORTED');
      assert.equal(out.xyz_still, true);
      assert.deepEqual(out.stats, { acked: 3, sent: 3, lost: 0 });
    },
  );
}

void test(
  'receipts and errors become PointstreamError with the same codes',
  { timeout: 120_000 },
  async (t) => {
    const server = await startServer({ tokens: [TOKEN], limits: { maxPointsPerFrame: 1000 } });
    t.after(() => server.close());
    const run = await py(
      `
import json, sys
import numpy as np
import pointstream
url, token = sys.argv[1], sys.argv[2]
codes = {}
def code_of(fn):
    try:
        fn()
        return None
    except pointstream.PointstreamError as error:
        assert str(error).endswith("(%s)" % error.code), str(error)
        return error.code
codes["bad_token"] = code_of(lambda: pointstream.connect(url, token="not-the-token-at-all", host_addresses=["127.0.0.1"]))
codes["bad_url"] = code_of(lambda: pointstream.connect("ftp://x"))
client = pointstream.connect(url, token=token, stream="errs", host_addresses=["127.0.0.1"], reconnect=False)
codes["too_many_points"] = code_of(lambda: client.send(np.zeros((2000, 3), np.float32)))
codes["ok_after"] = client.send(np.ones((500, 3))).ok
codes["shape"] = code_of(lambda: client.send(np.zeros((10, 2))))
codes["non_finite"] = code_of(lambda: client.send(np.array([[np.nan, 0, 0]])))
codes["fields"] = code_of(lambda: client.send(np.zeros(4, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("c", "c8")])))
codes["field_name"] = code_of(lambda: client.send(np.zeros((4, 3)), fields={"2nd": np.zeros(4)}))
codes["xyz_only"] = client.send(np.zeros(4, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4")])).ok
codes["rejected"] = client.stats.frames_rejected
codes["rejections"] = client.stats.rejections
client.close()
print(json.dumps(codes))
`,
      [server.url, TOKEN],
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.json.bad_token, 'PS_ERR_UNAUTHORIZED');
    assert.deepEqual(run.json.bad_url, 'PS_ERR_INVALID_OPTION');
    assert.deepEqual(run.json.too_many_points, 'PS_ERR_FRAME_TOO_MANY_POINTS');
    assert.equal(run.json.ok_after, true);
    assert.equal(run.json.shape, 'PS_ERR_INVALID_FRAME');
    assert.equal(run.json.non_finite, 'PS_ERR_FRAME_NON_FINITE');
    assert.equal(run.json.fields, 'PS_ERR_FIELDS_INVALID');
    assert.equal(run.json.field_name, 'PS_ERR_FIELDS_INVALID');
    assert.equal(run.json.xyz_only, true);
    assert.equal(run.json.rejected, 1);
    assert.deepEqual(run.json.rejections, { PS_ERR_FRAME_TOO_MANY_POINTS: 1 });
  },
);

void test(
  'a closing from the server ends send() with its code; with reconnect on, the next send goes on a new session',
  { timeout: 120_000 },
  async (t) => {
    const server = await startServer();
    t.after(() => server.close());
    const run = await py(
      `
import json, sys, time
import numpy as np
import pointstream, urllib.request
url = sys.argv[1]
out = {}
once = pointstream.connect(url, stream="closing-once", host_addresses=["127.0.0.1"], reconnect=False)
again = pointstream.connect(url, stream="closing-again", host_addresses=["127.0.0.1"])
first = again.session
once.send(np.ones((10, 3))); again.send(np.ones((10, 3)))
# Another sender takes each stream over: the server tells the old sessions PS_ERR_STREAM_REPLACED.
taker = pointstream.connect(url, stream="closing-once", host_addresses=["127.0.0.1"])
time.sleep(0.5)
try:
    once.send(np.ones((10, 3)))
except pointstream.PointstreamError as error:
    out["replaced"] = error.code
taker.close(); once.close()
# A DELETE of the session from outside: the server closes it (PS_ERR_SESSION_CLOSED), send reconnects.
urllib.request.urlopen(urllib.request.Request(url + "/sessions/" + first, method="DELETE")).read()
time.sleep(0.5)
receipt = again.send(np.ones((10, 3)))
out["reconnected"] = receipt.ok and again.session != first
out["reconnects"] = again.stats.reconnects
out["stream"] = again.stream
again.close()
print(json.dumps(out))
`,
      [server.url],
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.json, {
      replaced: 'PS_ERR_STREAM_REPLACED',
      reconnected: true,
      reconnects: 1,
      stream: 'closing-again',
    });
  },
);

void test(
  'python3 -m pointstream send --json prints the summary and exits as the Node CLI',
  { timeout: 120_000 },
  async (t) => {
    const server = await startServer({ tokens: [TOKEN] });
    t.after(() => server.close());
    const dir = tempDir(t, 'pycli');
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `# the token\n${TOKEN}\n`);
    const { python, site } = await install();
    const cli = (args: string[]): ReturnType<typeof runProcess> =>
      runProcess(
        python,
        [
          '-m',
          'pointstream',
          'send',
          '--signaling',
          `${server.url}/offer`,
          '--rtc-bind',
          LOOPBACK,
          '--json',
          ...args,
        ],
        { env: { PYTHONPATH: site }, timeoutMs: 90_000 },
      );
    const ok = await cli([
      '--token-file',
      tokenFile,
      '--stream',
      'py-cli',
      '--frames',
      '3',
      '--points',
      '100000',
      '--rate',
      '10',
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const summary = JSON.parse(ok.stdout.trim().split('\n').pop() as string) as Record<
      string,
      unknown
    >;
    assert.equal(summary.ok, true);
    assert.equal(summary.errorCode, null);
    assert.equal(summary.stream, 'py-cli');
    assert.equal(summary.form, 'chunked');
    for (const [field, value] of Object.entries({
      framesPlanned: 3,
      framesSent: 3,
      framesAcked: 3,
      framesLost: 0,
      framesRejected: 0,
      pointsPerFrame: 100_000,
    }))
      assert.equal(summary[field], value, field);
    assert.ok((summary.mbPerSec as number) > 0 && (summary.bytesSent as number) > 3 * 1_200_000);
    assert.deepEqual(summary.sessions, [summary.session]);
    assert.equal(
      server.stats(undefined).streams.find((s) => s.name === 'py-cli')?.framesReceived,
      3,
    );

    const refused = await cli(['--token', 'not-the-token-at-all', '--frames', '1']);
    assert.equal(refused.code, 4, refused.stderr);
    assert.equal(
      (JSON.parse(refused.stdout.trim()) as { errorCode: string }).errorCode,
      'PS_ERR_UNAUTHORIZED',
    );
    const usage = await cli(['--frames', '-1']);
    assert.equal(usage.code, 2);

    // --from a structured .npy (an organised (H, W) scan, bool field included): its fields go along
    // (small enough for the plain form under the default 256 KiB message limit).
    const npy = join(dir, 'scan.npy');
    const made = await runProcess(
      python,
      [
        '-c',
        `
import hashlib, json, sys
import numpy as np
rng = np.random.default_rng(5)
a = np.zeros((40, 200), dtype=[("x", "<f8"), ("y", "<f8"), ("z", "<f8"), ("intensity", "<f4"), ("valid", "?")])
for k in ("x", "y", "z", "intensity"):
    a[k] = rng.random((40, 200))
a["valid"] = rng.random((40, 200)) > 0.5
np.save(sys.argv[1], a)
flat = a.reshape(-1)
xyz = np.stack([flat["x"], flat["y"], flat["z"]], axis=1).astype("<f4")
print(json.dumps({"xyz": hashlib.sha256(xyz.tobytes()).hexdigest(),
                  "intensity": hashlib.sha256(flat["intensity"].tobytes()).hexdigest(),
                  "valid": hashlib.sha256(flat["valid"].astype("u1").tobytes()).hexdigest()}))
`,
        npy,
      ],
      { timeoutMs: 30_000 },
    );
    assert.equal(made.code, 0, made.stderr);
    const fromFile = new Map<string, Record<string, string>>();
    server.on('frame', (frame) => {
      const digests: Record<string, string> = { xyz: sha256(pointsBytes(frame.points)) };
      for (const [name, column] of Object.entries(frame.fields ?? {}))
        digests[name] = sha256(new Uint8Array(column.buffer, column.byteOffset, column.byteLength));
      fromFile.set(`${frame.stream}/${frame.seq}`, digests);
    });
    for (const form of [[], ['--plain']]) {
      const stream = `py-cli-fields${form.length ? '-plain' : ''}`;
      const sent = await cli([
        '--token',
        TOKEN,
        '--stream',
        stream,
        '--from',
        npy,
        '--frames',
        '2',
        '--rate',
        '10',
        ...form,
      ]);
      assert.equal(sent.code, 0, `${sent.stdout}\n${sent.stderr}`);
      const fieldsSummary = JSON.parse(sent.stdout.trim().split('\n').pop() as string) as Record<
        string,
        unknown
      >;
      assert.equal(fieldsSummary.framesAcked, 2);
      assert.equal(fieldsSummary.pointsPerFrame, 8000);
      assert.deepEqual(fieldsSummary.fields, [
        { name: 'intensity', type: 'f32' },
        { name: 'valid', type: 'u8' },
      ]);
      for (const seq of [0, 1])
        assert.deepEqual(
          fromFile.get(`${stream}/${seq}`),
          JSON.parse(made.stdout),
          `${stream} ${seq}`,
        );
    }
  },
);

/** sha256 of each frame a Node client sent, by seq; sends `count` frames at `rate` Hz. */
async function streamFromNode(
  server: PointstreamServer,
  stream: string,
  options: { count: number; rate: number; points: number; token?: string },
  started?: () => Promise<void>,
  /** Runs before the client closes: a stream's newest frame is served only while it is live. */
  beforeClose?: () => Promise<unknown>,
): Promise<{ sent: Map<number, string>; acked: number; lost: number }> {
  const client = await connect({
    signalingUrl: `${server.url}/offer`,
    rtc: { bindAddress: LOOPBACK },
    stream,
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  try {
    await started?.();
    const sent = new Map<number, string>();
    const receipts: Promise<unknown>[] = [];
    const t0 = Date.now();
    for (let k = 0; k < options.count; k++) {
      const due = t0 + (k * 1000) / options.rate;
      if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
      const points = Float32Array.from(
        { length: options.points * 3 },
        (_, i) => k * 1000 + i * 0.5,
      );
      const frame = await client.send(points);
      sent.set(frame.seq, sha256(pointsBytes(points)));
      receipts.push(frame.receipt);
    }
    const results = await Promise.allSettled(receipts);
    await beforeClose?.();
    return {
      sent,
      acked: results.filter((r) => r.status === 'fulfilled').length,
      lost: results.filter((r) => r.status === 'rejected').length,
    };
  } finally {
    await client.close();
  }
}

/** Polls an async condition every 50 ms until it holds; fails after `ms`. */
async function until(condition: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function metric(server: PointstreamServer, name: string): Promise<number> {
  const text = await (
    await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? NaN);
}

const READER = `
import hashlib, json, sys, time
import pointstream
url, stream, count, pause, token = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
got = []
for frame in pointstream.frames(url, stream, token=token):
    got.append({"seq": frame.meta["seq"], "dropped": frame.meta["dropped"], "shape": list(frame.points.shape),
                "dtype": frame.points.dtype.str, "sha256": hashlib.sha256(frame.points.tobytes()).hexdigest()})
    if len(got) == count or (pause > 0 and frame.meta["dropped"] > 0):
        break
    time.sleep(pause)
points, meta = pointstream.latest(url, stream, token=token)
print(json.dumps({"frames": got, "latest": {"seq": meta["seq"], "sha256": hashlib.sha256(points.tobytes()).hexdigest()}}))
`;

void test(
  'live frames: a Python reader gets the frames a Node client streams, as sent, and latest() the newest',
  { timeout: 120_000 },
  async (t) => {
    const server = await startServer({ tokens: [TOKEN] });
    t.after(() => server.close());
    await install();
    let reader: ReturnType<typeof py> | undefined;
    const result = await streamFromNode(
      server,
      'live-py',
      { count: 6, rate: 4, points: 50_000, token: TOKEN },
      async () => {
        reader = py(READER, [server.url, 'live-py', '6', '0', TOKEN]);
        await until(
          async () => (await metric(server, 'pointstream_live_readers')) === 1,
          20_000,
          'the reader',
        );
      },
      // The reader asks for latest() after its frames: the stream must still be live then.
      async () => reader,
    );
    const run = await (reader as ReturnType<typeof py>);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(result, { sent: result.sent, acked: 6, lost: 0 });
    const frames = run.json.frames as {
      seq: number;
      dropped: number;
      shape: number[];
      dtype: string;
      sha256: string;
    }[];
    assert.deepEqual(
      frames.map((f) => f.seq),
      [0, 1, 2, 3, 4, 5],
    );
    for (const frame of frames) {
      assert.deepEqual([frame.shape, frame.dtype, frame.dropped], [[50_000, 3], '<f4', 0]);
      assert.equal(frame.sha256, result.sent.get(frame.seq));
    }
    assert.deepEqual(run.json.latest, { seq: 5, sha256: result.sent.get(5) });
  },
);

void test(
  'live frames: a slow Python reader gets the newest frames, drops are counted, ingest is not slowed',
  { timeout: 120_000 },
  async (t) => {
    const server = await startServer({ tokens: [TOKEN] });
    t.after(() => server.close());
    await install();
    let reader: ReturnType<typeof py> | undefined;
    // 40 frames of 2.4 MB at 10 Hz while the reader takes 0.4 s a frame, until it is told of drops.
    const result = await streamFromNode(
      server,
      'live-slow',
      { count: 40, rate: 10, points: 200_000, token: TOKEN },
      async () => {
        reader = py(READER, [server.url, 'live-slow', '40', '0.4', TOKEN]);
        await until(
          async () => (await metric(server, 'pointstream_live_readers')) === 1,
          20_000,
          'the reader',
        );
      },
      async () => reader,
    );
    assert.equal(result.acked, 40, 'every frame acknowledged while the reader lags');
    assert.equal(result.lost, 0);
    const run = await (reader as ReturnType<typeof py>);
    assert.equal(run.code, 0, run.stderr);
    const frames = run.json.frames as { seq: number; dropped: number; sha256: string }[];
    assert.ok(frames.length < 40, 'the reader did not get every frame');
    const seqs = frames.map((f) => f.seq);
    assert.deepEqual(
      [...seqs].sort((a, b) => a - b),
      seqs,
      'seqs increase',
    );
    for (const frame of frames) assert.equal(frame.sha256, result.sent.get(frame.seq));
    assert.ok(
      (frames[frames.length - 1]?.dropped ?? 0) > 0,
      `drops reported to the reader: ${JSON.stringify(frames)}`,
    );
    assert.ok((await metric(server, 'pointstream_live_frames_dropped_total')) > 0);
  },
);

void test(
  'live frames over HTTP: auth, unknown streams, no frame yet, reader limits',
  { timeout: 60_000 },
  async (t) => {
    const server = await startServer({ tokens: [TOKEN, OTHER_TOKEN] });
    t.after(() => server.close());
    const get = (path: string, token = TOKEN, signal?: AbortSignal): Promise<Response> =>
      fetch(`${server.url}${path}`, {
        headers: { authorization: `Bearer ${token}` },
        ...(signal ? { signal } : {}),
      });
    const code = async (response: Response): Promise<[number, string]> => [
      response.status,
      ((await response.json()) as { error: { code: string } }).error.code,
    ];
    const client = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc: { bindAddress: LOOPBACK },
      stream: 'cam',
      token: TOKEN,
    });
    t.after(() => client.close());
    assert.deepEqual(await code(await fetch(`${server.url}/streams/cam/latest`)), [
      401,
      'PS_ERR_UNAUTHORIZED',
    ]);
    assert.deepEqual(await code(await get('/streams/nope/latest')), [
      404,
      'PS_ERR_SESSION_NOT_FOUND',
    ]);
    assert.deepEqual(await code(await get('/streams/cam/latest', OTHER_TOKEN)), [
      404,
      'PS_ERR_SESSION_NOT_FOUND',
    ]);
    assert.deepEqual(await code(await get('/streams/cam/frames', OTHER_TOKEN)), [
      404,
      'PS_ERR_SESSION_NOT_FOUND',
    ]);
    assert.deepEqual(await code(await get('/streams/a%20b/latest')), [
      400,
      'PS_ERR_STREAM_INVALID',
    ]);
    const none = await get('/streams/cam/latest');
    assert.equal(none.headers.get('retry-after'), '1');
    assert.deepEqual(await code(none), [404, 'PS_ERR_NO_FRAME_YET']);
    const fromPython = await py(
      `
import json, sys, pointstream
out = {}
for stream in ("cam", "nope"):
    try:
        pointstream.latest(sys.argv[1], stream, token=sys.argv[2])
    except pointstream.PointstreamError as error:
        out[stream] = [error.code, error.details.get("status"), error.details.get("retryAfter")]
print(json.dumps(out))
`,
      [server.url, TOKEN],
    );
    assert.deepEqual(fromPython.json, {
      cam: ['PS_ERR_NO_FRAME_YET', 404, 1],
      nope: ['PS_ERR_SESSION_NOT_FOUND', 404, null],
    });

    await (
      await client.send(Float32Array.from([1, 2, 3, 4, 5, 6]), { captureTime: 1_700_000_000_000 })
    ).receipt;
    const latest = await get('/streams/cam/latest');
    assert.equal(latest.status, 200);
    assert.equal(latest.headers.get('content-type'), 'application/x-npy');
    assert.deepEqual(
      ['ps-stream', 'ps-seq', 'ps-points', 'ps-capture-time', 'ps-encoding', 'ps-session'].map(
        (h) => latest.headers.get(h),
      ),
      ['cam', '0', '2', '1700000000000', 'raw', client.sessionId],
    );
    const npy = new Uint8Array(await latest.arrayBuffer());
    assert.equal(npy.length, 128 + 24);
    assert.deepEqual([...new Float32Array(npy.slice(128).buffer)], [1, 2, 3, 4, 5, 6]);

    // Readers per client: the default is 4 at once; the fifth gets 429.
    const aborts: AbortController[] = [];
    t.after(() => aborts.forEach((a) => a.abort()));
    for (let k = 0; k < 4; k++) {
      const abort = new AbortController();
      aborts.push(abort);
      const reader = await get('/streams/cam/frames', TOKEN, abort.signal);
      assert.equal(reader.status, 200);
      assert.equal(reader.headers.get('content-type'), 'application/x-pointstream-frames');
    }
    const fifth = await get('/streams/cam/frames');
    assert.equal(fifth.headers.get('retry-after') !== null, true);
    assert.deepEqual(await code(fifth), [429, 'PS_ERR_TOO_MANY_REQUESTS']);
    aborts.forEach((a) => a.abort());
    await until(
      async () => (await metric(server, 'pointstream_live_readers')) === 0,
      10_000,
      'readers gone',
    );
  },
);

void test(
  'a session moved by the server (PS_ERR_SESSION_MOVED): the Python client reconnects at once and loses nothing',
  { timeout: 120_000 },
  async (t) => {
    const sessions = captureSessions(t);
    const server = await startServer();
    t.after(() => server.close());
    const seqs: number[] = [];
    server.on('frame', (frame) => seqs.push(frame.seq));
    const run = py(
      `
import json, sys, time
import numpy as np
import pointstream
client = pointstream.connect(sys.argv[1], stream="moving", host_addresses=["127.0.0.1"])
sent = []
for k in range(12):
    sent.append(client.submit(np.full((100_000, 3), k, np.float32)))
    time.sleep(0.2)
receipts = [s.receipt(30) for s in sent]
s = client.stats
print(json.dumps({"acked": s.frames_acked, "lost": s.frames_lost, "moves": s.moves,
                  "reconnects": s.reconnects, "sessions": len(s.sessions),
                  "seqs": [r.seq for r in receipts]}))
client.close()
`,
      [server.url],
    );
    await until(async () => Promise.resolve(seqs.length >= 3), 30_000, 'three frames');
    await sessions[0]?.moveAway();
    const result = await run;
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.json, {
      acked: 12,
      lost: 0,
      moves: 1,
      reconnects: 1,
      sessions: 2,
      seqs: [...Array(12).keys()],
    });
    assert.deepEqual(seqs, [...Array(12).keys()], 'every frame once, in order');
  },
);

void test(
  'a server gone silent (heartbeats stop): frames in flight are lost and send() raises PS_ERR_PEER_SILENT',
  { timeout: 120_000 },
  async (t) => {
    const server = spawn(
      process.execPath,
      ['--import', 'tsx', CLI, 'serve', '--host', LOOPBACK, '--port', '0'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    t.after(() => {
      server.kill('SIGCONT');
      server.kill('SIGKILL');
    });
    let output = '';
    server.stdout.on('data', (data: Buffer) => (output += data.toString()));
    server.stderr.on('data', (data: Buffer) => (output += data.toString()));
    await until(
      async () => Promise.resolve(/signaling: (http\S+)\/offer/.test(output)),
      30_000,
      'serve',
    );
    const url = /signaling: (http\S+)\/offer/.exec(output)?.[1] as string;
    const run = await py(
      `
import json, os, signal, sys
import numpy as np
import pointstream
client = pointstream.connect(sys.argv[1], host_addresses=["127.0.0.1"], reconnect=False, liveness_timeout=1.0)
out = {"first": client.send(np.ones((10, 3))).ok}
os.kill(int(sys.argv[2]), signal.SIGSTOP)   # the server goes silent, its connection stays
try:
    client.send(np.ones((10, 3)), timeout=20)
except pointstream.PointstreamError as error:
    out["in_flight"], out["cause"] = error.code, error.details.get("cause")
try:
    client.send(np.ones((10, 3)))
except pointstream.PointstreamError as error:
    out["next"] = error.code
os.kill(int(sys.argv[2]), signal.SIGCONT)
out["lost"], out["silent"] = client.stats.frames_lost, client.stats.peer_silent
client.close(wait=0)
print(json.dumps(out))
`,
      [url, String(server.pid)],
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.json, {
      first: true,
      in_flight: 'PS_ERR_FRAME_LOST',
      cause: 'PS_ERR_PEER_SILENT',
      next: 'PS_ERR_PEER_SILENT',
      lost: 1,
      silent: 1,
    });
  },
);

const UNTIL_END = `
import json, sys
import pointstream
seqs = []
try:
    for points, meta in pointstream.frames(sys.argv[1], sys.argv[2]):
        seqs.append(meta["seq"])
        print("frame", flush=True)
except pointstream.PointstreamError as error:
    print(json.dumps({"seqs": seqs, "end": error.code}))
`;

void test(
  'live frames: a reader is ended with a code when its stream is forgotten, and when the server closes',
  { timeout: 90_000 },
  async (t) => {
    const server = await startServer({ limits: { streamHoldMs: 300 } });
    let closed = false;
    t.after(() => (closed ? undefined : server.close()));
    const rtc = { bindAddress: LOOPBACK };
    const short = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'short' });
    await (
      await short.send(Float32Array.from([1, 2, 3]))
    ).receipt;
    const forgotten = py(UNTIL_END, [server.url, 'short']);
    await until(
      async () => (await metric(server, 'pointstream_live_readers')) === 1,
      20_000,
      'reader',
    );
    await short.close(); // the stream is forgotten 300 ms later
    const first = await forgotten;
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(first.json, { seqs: [0], end: 'PS_ERR_SESSION_CLOSED' });

    const long = await connect({ signalingUrl: `${server.url}/offer`, rtc, stream: 'long' });
    t.after(() => long.close());
    const stopped = py(UNTIL_END, [server.url, 'long']);
    await until(
      async () => (await metric(server, 'pointstream_live_readers')) === 1,
      20_000,
      'reader',
    );
    await server.close(); // does not wait for the long-lived response: it ends it
    closed = true;
    const second = await stopped;
    assert.equal(second.code, 0, second.stderr);
    assert.deepEqual(second.json, { seqs: [], end: 'PS_ERR_SHUTTING_DOWN' });
  },
);

void test(
  'HTTPS with a bearer token: the Python client and latest() trust a private CA; without it PS_ERR_SIGNALING_TLS',
  { timeout: 90_000 },
  async (t) => {
    const dir = tempDir(t, 'pytls');
    const certPath = join(dir, 'cert.pem');
    const keyPath = join(dir, 'key.pem');
    // A throwaway self-signed certificate for 127.0.0.1 (as test/security.test.ts makes one).
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
        ...['-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=127.0.0.1'],
        ...['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
      ],
      { stdio: 'ignore' },
    );
    const server = await startServer({
      tls: { cert: readFileSync(certPath), key: readFileSync(keyPath) },
      tokens: [TOKEN],
    });
    t.after(() => server.close());
    assert.match(server.url, /^https:/);
    const run = await py(
      `
import json, sys
import numpy as np
import pointstream
url, token, ca = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}
try:
    pointstream.connect(url, token=token, host_addresses=["127.0.0.1"])
except pointstream.PointstreamError as error:
    out["untrusted"] = error.code
with pointstream.connect(url, token=token, stream="tls", ca=ca, host_addresses=["127.0.0.1"]) as client:
    out["ok"] = client.send(np.ones((100, 3))).ok
    out["latest"] = pointstream.latest(url, "tls", token=token, ca=ca).meta["points"]
print(json.dumps(out))
`,
      [server.url, TOKEN, certPath],
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.json, { untrusted: 'PS_ERR_SIGNALING_TLS', ok: true, latest: 100 });
  },
);
