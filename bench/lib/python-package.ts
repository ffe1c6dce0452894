/**
 * The Python package (`python/`, docs/python.md) against `serve`, as users type it:
 * `python3 -m pointstream send --rate 0 --frames N --json`, chunked and in the plain form (one
 * 12 MB message per frame, so the server gets `--max-plain-bytes`). Runs from the source folder
 * (`python/` on `sys.path`), with Debian's python3, NumPy and aiortc; skipped like the fixture.
 */
import { PYTHON, plainServeArgs } from './aiortc.js';
import { describeExit, failure, lastJsonLine, runCommand } from './proc.js';
import { per100MB, withServer } from './scenarios.js';

export type PackageForm = 'chunked' | 'plain';

export interface PackageResult {
  readonly form: PackageForm;
  readonly points: number;
  readonly framesPlanned: number;
  readonly framesAcked: number;
  /** The summary's `achievedHz`: acknowledged frames over the run (connecting excluded). */
  readonly framesPerSec: number;
  readonly mbPerSec: number;
  readonly seconds: number;
  /** The summary's `cpuSeconds` (the Python process, connecting excluded). */
  readonly pythonCpuSec: number;
  readonly serverCpuPer100MB: number;
}

/** `python3 -m pointstream send` with `python/` on the path (argv after `-c CODE`; the bench runs in the repository). */
export const PACKAGE_RUNNER =
  "import sys; sys.path.insert(0, 'python'); from pointstream.cli import main; sys.exit(main())";

export const packageArgs = (
  url: string,
  frames: number,
  points: number,
  form: PackageForm,
): string[] => [
  'send',
  '--signaling',
  `${url}/offer`,
  '--rtc-bind',
  '127.0.0.1',
  '--rate',
  '0',
  '--frames',
  String(frames),
  '--points',
  String(points),
  '--json',
  ...(form === 'plain' ? ['--plain'] : []),
];

interface Summary {
  readonly framesAcked: number;
  readonly achievedHz: number;
  readonly mbPerSec: number;
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly bytesSent: number;
}

export async function runPythonPackage(
  frames: number,
  points: number,
  form: PackageForm,
): Promise<PackageResult> {
  const label = `python package (${form})`;
  const timeoutMs = 60_000 + frames * 20_000;
  return withServer(label, plainServeArgs(), timeoutMs, async (server) => {
    const before = await server.stats();
    const args = ['-c', PACKAGE_RUNNER, ...packageArgs(server.url, frames, points, form)];
    const result = await runCommand(`${label} client`, PYTHON, args, timeoutMs);
    const after = await server.stats();
    if (result.code !== 0 && result.code !== 1)
      throw failure(`${label} client: ${describeExit(result)}`, result.stderr);
    const summary = lastJsonLine(`${label} client`, result) as Summary;
    return {
      form,
      points,
      framesPlanned: frames,
      framesAcked: summary.framesAcked,
      framesPerSec: summary.achievedHz,
      mbPerSec: summary.mbPerSec,
      seconds: summary.seconds,
      pythonCpuSec: summary.cpuSeconds,
      serverCpuPer100MB: per100MB(
        after.cpuSeconds - before.cpuSeconds,
        after.totals.bytesReceived - before.totals.bytesReceived,
      ),
    };
  });
}
