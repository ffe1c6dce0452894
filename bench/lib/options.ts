/** Command-line options of `npm run bench`. */
import { parseArgs } from 'node:util';

export const SCENARIOS = [
  'ceilings',
  'seed',
  'chunks',
  'scale',
  'clients',
  'cluster',
  'endurance',
  'tls',
  'aiortc',
  'encodings',
  'fields',
  'browser',
] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export const USAGE =
  'usage: npm run bench -- [--scenarios a,b,...] [--quick] [--repeats N] [--frames N] [--ceiling-seconds S]\n' +
  '    [--seed-duration S] [--scale-duration S] [--clients-duration S] [--endurance-minutes N]\n' +
  '    [--aiortc-frames N] [--cluster-duration S] [--cluster-kills N] [--quiet-wait S]\n' +
  `  scenarios: ${SCENARIOS.join(', ')} (default: all but endurance; ` +
  '--endurance-minutes alone adds it)';

export interface Options {
  readonly scenarios: ReadonlySet<ScenarioName>;
  readonly quick: boolean;
  /** Repeats of the ceilings and of each chunk size. */
  readonly repeats: number;
  /** Frames of each bare-pair run and of each `--rate 0` run of the chunks scenario. */
  readonly frames: number;
  /** `send --rate 0 --duration S` in the ceilings scenario. */
  readonly ceilingSeconds: number;
  readonly seedDuration: number;
  readonly chunkSizes: readonly number[];
  readonly scaleDuration: number;
  readonly scalePoints: readonly number[];
  readonly clientCounts: readonly number[];
  readonly clientPoints: number;
  readonly clientsDuration: number;
  /** Nodes of each cluster ingest run (one `send --rate 0` client per node). */
  readonly clusterNodeCounts: readonly number[];
  readonly clusterPoints: number;
  /** `send --duration S` of each cluster ingest run. */
  readonly clusterDuration: number;
  /** SIGKILLs of the cluster failover run. */
  readonly clusterKills: number;
  readonly enduranceMinutes: number;
  readonly aiortcFrames: number;
  readonly aiortcPoints: number;
  /** Seconds of each end-to-end run of the encodings scenario (one per encoding and scene). */
  readonly encodingsDuration: number;
  /** Precisions (metres) asked of the encodings that take one, in the codec table. */
  readonly encodingPrecisions: readonly number[];
  /** Repeats of each browser-sender case, and seconds of each rated one. */
  readonly browserRepeats: number;
  readonly browserSeconds: number;
  /** Points per frame the browser sender tries at 4 Hz. */
  readonly browserLadder: readonly number[];
  /** Seconds to wait, before each run, for the machine to go quiet (0: don't). */
  readonly quietWait: number;
}

export function usage(message: string): never {
  console.error(`bench: ${message}`);
  console.error(USAGE);
  process.exit(2);
}

/** Defaults: full run; `--quick`: every selected scenario briefly. Explicit flags win. */
export function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      scenarios: { type: 'string' },
      help: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      repeats: { type: 'string' },
      frames: { type: 'string' },
      'ceiling-seconds': { type: 'string' },
      'seed-duration': { type: 'string' },
      'scale-duration': { type: 'string' },
      'clients-duration': { type: 'string' },
      'cluster-duration': { type: 'string' },
      'cluster-kills': { type: 'string' },
      'endurance-minutes': { type: 'string' },
      'aiortc-frames': { type: 'string' },
      'encodings-duration': { type: 'string' },
      'browser-repeats': { type: 'string' },
      'browser-seconds': { type: 'string' },
      'quiet-wait': { type: 'string' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const quick = values.quick;
  const int = (name: keyof typeof values, full: number, brief: number, min = 1): number => {
    const value = values[name];
    if (value === undefined) return quick ? brief : full;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) usage(`--${name} must be an integer >= ${min}`);
    return n;
  };
  return {
    scenarios: selectScenarios(values.scenarios, values['endurance-minutes'] !== undefined),
    quick,
    repeats: int('repeats', 3, 1),
    frames: int('frames', 40, 10),
    ceilingSeconds: int('ceiling-seconds', 10, 4),
    seedDuration: int('seed-duration', 60, 10),
    chunkSizes: [65_536, 131_072, 262_144, 1_048_576],
    scaleDuration: int('scale-duration', 20, 5),
    scalePoints: [100_000, 1_000_000, 2_000_000, 4_000_000],
    clientCounts: [1, 2, 4, 8],
    clientPoints: 250_000,
    clientsDuration: int('clients-duration', 20, 5),
    clusterNodeCounts: [1, 2, 3],
    clusterPoints: 1_000_000,
    clusterDuration: int('cluster-duration', 15, 5),
    clusterKills: int('cluster-kills', 10, 3),
    enduranceMinutes: int('endurance-minutes', 10, 1),
    aiortcFrames: int('aiortc-frames', 8, 2),
    aiortcPoints: 1_000_000,
    encodingsDuration: int('encodings-duration', 30, 5),
    encodingPrecisions: [0.001, 0.002],
    browserRepeats: int('browser-repeats', 3, 1),
    browserSeconds: int('browser-seconds', 5, 3),
    browserLadder: quick ? [250_000, 1_000_000] : [100_000, 250_000, 500_000, 1_000_000],
    quietWait: int('quiet-wait', 30, 5, 0),
  };
}

function selectScenarios(list: string | undefined, endurance: boolean): Set<ScenarioName> {
  if (list === undefined) {
    return new Set(SCENARIOS.filter((s) => s !== 'endurance' || endurance));
  }
  const chosen = new Set<ScenarioName>();
  for (const name of list.split(',').map((s) => s.trim())) {
    if (!(SCENARIOS as readonly string[]).includes(name)) usage(`unknown scenario ${name}`);
    chosen.add(name as ScenarioName);
  }
  if (endurance && !chosen.has('endurance')) {
    usage('--endurance-minutes needs endurance in --scenarios');
  }
  return chosen;
}
