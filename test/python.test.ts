import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, connect } from '../src/index.js';
import type { ManifestEntry } from '../src/server/recorder.js';
import { loadPointFile, openFileSource } from '../src/sources/files.js';
import {
  CLI,
  LOOPBACK,
  findPython as python,
  runProcess as run,
  startServer,
  waitFor,
} from './helpers.js';

const AIORTC_CLIENT = fileURLToPath(
  new URL('./fixtures/clients/aiortc_client.py', import.meta.url),
);

function tempDir(t: { after(fn: () => void): void }, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pointstream-${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** numpy: are the files in `a` and `b` (same names) identical arrays, bit for bit? */
/** `<dir>/<stream>/<UTC time>_<session>`: the one folder of that session. */
function sessionFolderOf(dir: string, stream: string, session: string): string {
  const folders = readdirSync(join(dir, stream)).filter((name) => name.endsWith(`_${session}`));
  assert.equal(folders.length, 1, `one folder of session ${session} in ${join(dir, stream)}`);
  return join(dir, stream, folders[0] as string);
}

const COMPARE = `
import sys, os, numpy as np
a, b = sys.argv[1], sys.argv[2]
names = sorted(n for n in os.listdir(b) if n.endswith('.npy'))
assert names == sorted(n for n in os.listdir(a) if n.endswith('.npy')), (names, os.listdir(a))
for n in names:
    x, y = np.load(os.path.join(a, n)), np.load(os.path.join(b, n))
    assert x.dtype == np.dtype('<f4') and x.shape == y.shape and x.tobytes() == y.tobytes(), n
print(len(names))
`;

for (const mode of ['npy', 'raw'] as const) {
  void test(
    `an aiortc client sending ${mode} frames as single messages is received and recorded intact`,
    { timeout: 90_000 },
    async (t) => {
      const py = python('aiortc, numpy');
      const recordings = tempDir(t, 'rec');
      const sent = tempDir(t, 'sent');
      const server = await startServer({ record: { dir: recordings } });
      t.after(() => server.close());
      const result = await run(py, [
        AIORTC_CLIENT,
        `${server.url}/offer`,
        '--mode',
        mode,
        '--frames',
        '3',
        '--points',
        '20000',
        '--save-dir',
        sent,
      ]);
      assert.equal(result.code, 0, result.stderr);
      const summary = JSON.parse(result.stdout.trim()) as {
        session: string;
        receipts: { ok: boolean; points: number }[];
      };
      assert.equal(summary.receipts.length, 3);
      assert.ok(
        summary.receipts.every((r) => r.ok && r.points === 20_000),
        JSON.stringify(summary.receipts),
      );
      await waitFor(
        () => (server.stats().recording?.framesRecorded ?? 0) === 3,
        10_000,
        'three recorded frames',
      );

      // It named no stream: its stream is named after its session.
      const sessionDir = sessionFolderOf(recordings, summary.session, summary.session);
      const compared = execFileSync(py, ['-c', COMPARE, sessionDir, sent], {
        encoding: 'utf8',
      }).trim();
      assert.equal(compared, '3');
      const manifest = readFileSync(join(sessionDir, 'manifest.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as ManifestEntry);
      assert.deepEqual(
        manifest.map((m) => [m.seq, m.file, m.points, m.form]),
        [0, 1, 2].map((seq) => [
          seq,
          `${String(seq).padStart(12, '0')}.npy`,
          20_000,
          mode === 'npy' ? 'plain-npy' : 'plain-raw',
        ]),
      );
      assert.ok(manifest.every((m) => m.bytes === 128 + 20_000 * 12 && m.receivedAt > 0));
    },
  );
}

void test(
  'recordings: chunked frames with their checksums, no partial files, replayed by send --from',
  { timeout: 90_000 },
  async (t) => {
    const py = python('numpy');
    const recordings = tempDir(t, 'rec');
    const server = await startServer({ record: { dir: recordings } });
    t.after(() => server.close());
    const client = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc: { bindAddress: LOOPBACK },
    });
    const frames = [0, 1, 2, 3].map((k) =>
      Float32Array.from({ length: 30_000 }, (_, i) => k * 1000 + i * 0.25),
    );
    for (const frame of frames)
      await (
        await client.send(frame, { captureTime: 1_700_000_000_000 })
      ).receipt;
    const session = client.sessionId as string;
    await client.close();
    await waitFor(
      () => server.stats().recording?.framesRecorded === 4,
      10_000,
      'four recorded frames',
    );

    const dir = sessionFolderOf(recordings, session, session);
    assert.deepEqual(readdirSync(dir).sort(), [
      '000000000000.npy',
      '000000000001.npy',
      '000000000002.npy',
      '000000000003.npy',
      'manifest.jsonl',
    ]);
    const manifest = readFileSync(join(dir, 'manifest.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as ManifestEntry);
    assert.ok(
      manifest.every(
        (m) =>
          m.captureTime === 1_700_000_000_000 &&
          typeof m.crc32 === 'number' &&
          m.form === 'chunked',
      ),
    );
    const sums = execFileSync(
      py,
      [
        '-c',
        'import sys, numpy as np\nfor f in sys.argv[1:]: a = np.load(f); print(a.dtype.str, a.shape, float(a[-1, 2]))',
        ...readdirSync(dir)
          .filter((f) => f.endsWith('.npy'))
          .sort()
          .map((f) => join(dir, f)),
      ],
      { encoding: 'utf8' },
    );
    assert.deepEqual(
      sums.trim().split('\n'),
      frames.map((f) => `<f4 (10000, 3) ${String(f[f.length - 1])}`),
    );

    // Replay the recording into a second server: the same frames arrive.
    const replayTarget = tempDir(t, 'replay');
    const second = await startServer({ record: { dir: replayTarget } });
    t.after(() => second.close());
    const replay = await run(process.execPath, [
      '--import',
      'tsx',
      CLI,
      'send',
      '--signaling',
      `${second.url}/offer`,
      '--from',
      recordings,
      '--rate',
      '20',
      '--json',
    ]);
    assert.equal(replay.code, 0, replay.stderr);
    const replayed = JSON.parse(replay.stdout.trim().split('\n').pop() as string) as {
      framesAcked: number;
      session: string;
      stream: string;
    };
    assert.equal(replayed.framesAcked, 4);
    await waitFor(
      () => second.stats().recording?.framesRecorded === 4,
      10_000,
      'replayed frames recorded',
    );
    assert.equal(
      execFileSync(
        py,
        ['-c', COMPARE, sessionFolderOf(replayTarget, replayed.stream, replayed.session), dir],
        {
          encoding: 'utf8',
        },
      ).trim(),
      '4',
    );
  },
);

void test(
  'a recording that cannot be written is reported loudly, and ingest goes on',
  { timeout: 60_000 },
  async (t) => {
    const recordings = tempDir(t, 'rec');
    const server = await startServer({ record: { dir: recordings } });
    t.after(() => server.close());
    const client = await connect({
      signalingUrl: `${server.url}/offer`,
      rtc: { bindAddress: LOOPBACK },
    });
    t.after(() => client.close());
    // The stream's directory exists but is a file: every write fails (as with a full or read-only disk).
    writeFileSync(join(recordings, client.stream as string), 'in the way');
    for (let k = 0; k < 3; k++)
      assert.equal((await (await client.send(new Float32Array(3000))).receipt).ok, true);
    await waitFor(
      () => server.stats().recording?.framesNotRecorded === 3,
      10_000,
      'three frames counted as not recorded',
    );
    assert.match(server.stats().recording?.lastError ?? '', /ENOTDIR|EEXIST|not a directory/);
    assert.equal(server.stats().totals.framesReceived, 3);

    // A directory the server cannot write to is refused at start, with the reason.
    if (process.getuid?.() !== 0) {
      const locked = join(recordings, 'locked');
      mkdirSync(locked);
      chmodSync(locked, 0o500);
      await assert.rejects(
        startServer({ record: { dir: join(locked, 'x') } }),
        /cannot record to .*permission denied/,
      );
    }
    await assert.rejects(
      startServer({
        record: { dir: join(recordings, client.sessionId as string, 'below-a-file') },
      }),
      /cannot record to/,
    );
  },
);

void test(
  'point files: .npy (N, >=3) float32/float64, ASCII and binary PLY; bad files named with their problem',
  { timeout: 30_000 },
  async (t) => {
    const dir = tempDir(t, 'files');
    const fixtures = fileURLToPath(new URL('./fixtures/npy/', import.meta.url));
    const threePoints = loadPointFile(join(fixtures, 'xyz_f4_3pts.npy'));
    assert.deepEqual([...threePoints], [0, 1, 2, 3, 4, 5, -1.5, 2.25, Math.fround(1e30)]);
    assert.equal(
      loadPointFile(join(fixtures, 'xyzi_f4_4cols.npy')).length,
      15,
      'the fourth column is dropped',
    );
    assert.deepEqual([...loadPointFile(join(fixtures, 'xyz_f8.npy'))].length, 6);

    const ascii =
      'ply\nformat ascii 1.0\ncomment made by hand\nelement vertex 2\nproperty float x\nproperty float y\nproperty float z\nproperty uchar red\nelement face 0\nproperty list uchar int vertex_indices\nend_header\n1 2 3 255\n-4.5 5 6e2 0\n';
    writeFileSync(join(dir, 'a.ply'), ascii);
    assert.deepEqual([...loadPointFile(join(dir, 'a.ply'))], [1, 2, 3, -4.5, 5, 600]);
    const header = Buffer.from(
      'ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty double x\nproperty float y\nproperty short z\nproperty float intensity\nend_header\n',
    );
    const body = Buffer.alloc(2 * 18);
    body.writeDoubleLE(1.5, 0);
    body.writeFloatLE(-2, 8);
    body.writeInt16LE(300, 12);
    body.writeFloatLE(9, 14);
    body.writeDoubleLE(7, 18);
    body.writeFloatLE(8, 26);
    body.writeInt16LE(-9, 30);
    writeFileSync(join(dir, 'b.ply'), Buffer.concat([header, body]));
    assert.deepEqual([...loadPointFile(join(dir, 'b.ply'))], [1.5, -2, 300, 7, 8, -9]);

    const bad: [string, string | Buffer, string, RegExp][] = [
      ['missing.npy', '', ErrorCodes.SOURCE_UNREADABLE, /ENOENT/],
      ['points.las', 'x', ErrorCodes.SOURCE_UNREADABLE, /unsupported file type/],
      [
        'i4.npy',
        readFileSync(join(fixtures, 'xyz_i4.npy')),
        ErrorCodes.NPY_UNSUPPORTED_DTYPE,
        /<i4/,
      ],
      ['1d.npy', readFileSync(join(fixtures, 'xyz_f4_1d.npy')), ErrorCodes.NPY_BAD_SHAPE, /\(6\)/],
      [
        'cut.npy',
        readFileSync(join(fixtures, 'xyz_f4_1000.npy')).subarray(0, 5000),
        ErrorCodes.NPY_TRUNCATED,
        /needs 12128 bytes/,
      ],
      [
        'middle-endian.ply',
        'ply\nformat binary_middle_endian 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n',
        ErrorCodes.PLY_UNSUPPORTED,
        /binary_middle_endian/,
      ],
      [
        'no-z.ply',
        'ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nend_header\n1 2\n',
        ErrorCodes.PLY_UNSUPPORTED,
        /lacks x, y or z/,
      ],
      [
        'list.ply',
        'ply\nformat ascii 1.0\nelement vertex 1\nproperty list uchar float x\nend_header\n',
        ErrorCodes.PLY_UNSUPPORTED,
        /list property/,
      ],
      [
        'short.ply',
        'ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\nend_header\n1 2 3\n',
        ErrorCodes.PLY_TRUNCATED,
        // Checked against the file's size before anything is allocated.
        /3 vertices of 3 values need at least 17 bytes; the body has 6/,
      ],
      [
        'word.ply',
        'ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nproperty float z\nend_header\n1 two 3\n',
        ErrorCodes.PLY_BAD_DATA,
        /"two"/,
      ],
      [
        'cut.ply',
        Buffer.concat([header, body.subarray(0, 20)]),
        ErrorCodes.PLY_TRUNCATED,
        /need 36 bytes/,
      ],
      ['noheader.ply', 'ply\nformat ascii 1.0\n', ErrorCodes.PLY_BAD_HEADER, /end_header/],
      ['notply.ply', 'hello', ErrorCodes.PLY_BAD_HEADER, /not a PLY file/],
    ];
    for (const [name, content, code, message] of bad) {
      const path = join(dir, name);
      if (name !== 'missing.npy') writeFileSync(path, content);
      assert.throws(
        () => loadPointFile(path),
        (error: Error & { code?: string }) => {
          assert.equal(error.code, code, name);
          assert.match(error.message, message, name);
          assert.ok(error.message.startsWith(path), `${name}: the message names the file`);
          return true;
        },
      );
    }
    mkdirSync(join(dir, 'empty'));
    assert.throws(() => openFileSource(join(dir, 'empty')), { code: ErrorCodes.SOURCE_EMPTY });

    const cli = await run(process.execPath, [
      '--import',
      'tsx',
      CLI,
      'send',
      '--signaling',
      'http://127.0.0.1:9/offer',
      '--from',
      join(dir, 'short.ply'),
    ]);
    assert.equal(cli.code, 2, cli.stderr);
    assert.match(
      cli.stderr,
      /short\.ply: 3 vertices of 3 values need at least 17 bytes; the body has 6 \(PS_ERR_PLY_TRUNCATED\)/,
    );
  },
);
