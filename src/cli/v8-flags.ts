/**
 * V8 flags the CLI sets at start, before any other module is loaded (main.ts). No imports here:
 * this runs while the heap is still empty.
 *
 * `serve` and `consume` run without V8's incremental marking (`serve --incremental-gc` or
 * POINTSTREAM_INCREMENTAL_GC keeps it). node-datachannel hands over every message as a fresh
 * 256 KiB Buffer; V8 counts those bytes as external memory, and once the heap is over 8 MB that
 * starts an incremental full GC every ~32 MB received: about 10% of the server's CPU at line
 * rate, measured. Without it the young Buffers die in scavenges and a full GC of this small heap
 * is a ~10 ms pause. `consume` gets 1 MiB parts from NATS the same way: reading 60 raw 1M-point
 * frames took 2.6-2.8 CPU s without it, 3.1-3.6 s with it (measured, 2 runs each).
 *
 * Why at start: V8 does not expect flags to change while it runs. Flipped later (when serve
 * started), a concurrent marking job already under way aborted the process ("unreachable code")
 * in 2 of about 25 CI runs.
 */

const ENV_TRUE = new Set(['1', 'true', 'yes', 'on']);

/** The V8 flags for this command line (argv as `process.argv`): '' when none. */
export function v8FlagsFor(argv: readonly string[], env: NodeJS.ProcessEnv): string {
  if (argv[2] !== 'serve' && argv[2] !== 'consume') return '';
  if (argv.includes('--incremental-gc')) return '';
  if (ENV_TRUE.has((env.POINTSTREAM_INCREMENTAL_GC ?? '').trim().toLowerCase())) return '';
  return '--no-incremental-marking';
}
