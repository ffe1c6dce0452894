/**
 * An aiortc (Python) client against `serve`: the test fixture sends each 1M-point frame as ONE
 * .npy message in the plain form and waits for its receipt before the next. Skipped when
 * `/usr/bin/python3` cannot import aiortc and numpy.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeExit, failure, lastJsonLine, runCommand } from './proc.js';
import { npyBytes, per100MB, serveArgs, withServer } from './scenarios.js';
import { countersSince, readCounters } from './system.js';

export const PYTHON = '/usr/bin/python3';
export const FIXTURE = 'test/fixtures/clients/aiortc_client.py';

/**
 * Runs the fixture (argv after `-c CODE`) as `__main__` and reports the interpreter's own CPU
 * time on stderr when it exits, the fixture being left as it is.
 */
export const CPU_WRAPPER = [
  'import atexit, resource, runpy, sys',
  'def cpu():',
  '    r = resource.getrusage(resource.RUSAGE_SELF)',
  "    sys.stderr.write('bench-cpu-seconds %.3f\\n' % (r.ru_utime + r.ru_stime))",
  'atexit.register(cpu)',
  'sys.argv = sys.argv[1:]',
  "runpy.run_path(sys.argv[0], run_name='__main__')",
].join('\n');

/**
 * The server of the aiortc runs: a 1M-point frame as one message (12,000,128 bytes) needs a
 * message cap above the default 256 KiB (`--max-plain-bytes`), else every frame is refused.
 */
export const plainServeArgs = (): string[] =>
  serveArgs({ extra: ['--max-plain-bytes', String(16 * 1024 * 1024)] });

export interface AiortcResult {
  readonly points: number;
  readonly framesPlanned: number;
  readonly framesAcked: number;
  readonly frameBytes: number;
  /** From the first to the last receipt's `receivedAt` (server clock): steady state. */
  readonly framesPerSec: number;
  readonly mbPerSec: number;
  /** Whole process: Python start-up, connecting, every frame. */
  readonly wallSeconds: number;
  readonly pythonCpuSec: number;
  readonly serverCpuSec: number;
  readonly serverCpuPer100MB: number;
  readonly serverPeakRssBytes: number;
  readonly otherCpuSec: number;
}

/** Why aiortc cannot run here, or undefined when it can. */
export function aiortcUnavailable(): string | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import aiortc, numpy'], { stdio: 'ignore', timeout: 30_000 });
    return undefined;
  } catch {
    return `\`${PYTHON} -c 'import aiortc, numpy'\` failed (apt-get install python3-aiortc python3-numpy)`;
  }
}

export const aiortcArgs = (
  url: string,
  frames: number,
  points: number,
  saveDir: string,
): string[] => [
  FIXTURE,
  `${url}/offer`,
  '--mode',
  'npy',
  '--frames',
  String(frames),
  '--points',
  String(points),
  '--save-dir',
  saveDir,
];

interface Receipt {
  readonly ok: boolean;
  readonly receivedAt: number;
  readonly points: number;
}

export async function runAiortc(frames: number, points: number): Promise<AiortcResult> {
  const label = 'aiortc';
  // The fixture waits up to 15 s for each receipt; it saves every frame it sends to saveDir.
  const timeoutMs = 60_000 + frames * 20_000;
  const saveDir = mkdtempSync(join(tmpdir(), 'pointstream-bench-aiortc-'));
  try {
    return await withServer(label, plainServeArgs(), timeoutMs, async (server) => {
      const before = await server.stats();
      const counters = readCounters();
      const started = performance.now();
      const args = ['-c', CPU_WRAPPER, ...aiortcArgs(server.url, frames, points, saveDir)];
      const result = await runCommand(`${label} client`, PYTHON, args, timeoutMs);
      const wallSeconds = (performance.now() - started) / 1000;
      const system = countersSince(counters);
      const after = await server.stats();
      if (result.code !== 0)
        throw failure(`${label} client: ${describeExit(result)}`, result.stderr);
      const { receipts } = lastJsonLine(`${label} client`, result) as { receipts: Receipt[] };
      const acked = receipts.filter((r) => r.ok && r.points === points);
      const cpuMatch = /bench-cpu-seconds ([\d.]+)/.exec(result.stderr);
      const pythonCpuSec = cpuMatch ? Number(cpuMatch[1]) : NaN;
      const span = ((acked.at(-1)?.receivedAt ?? 0) - (acked[0]?.receivedAt ?? 0)) / 1000;
      const framesPerSec = acked.length >= 2 && span > 0 ? (acked.length - 1) / span : NaN;
      const serverBytes = after.totals.bytesReceived - before.totals.bytesReceived;
      const serverCpuSec = after.cpuSeconds - before.cpuSeconds;
      return {
        points,
        framesPlanned: frames,
        framesAcked: acked.length,
        frameBytes: npyBytes(points),
        framesPerSec,
        mbPerSec: (framesPerSec * npyBytes(points)) / 1e6,
        wallSeconds,
        pythonCpuSec,
        serverCpuSec,
        serverCpuPer100MB: per100MB(serverCpuSec, serverBytes),
        serverPeakRssBytes: after.memory.peakRssBytes,
        otherCpuSec: system.busySec - serverCpuSec - pythonCpuSec,
      };
    });
  } finally {
    rmSync(saveDir, { recursive: true, force: true });
  }
}
