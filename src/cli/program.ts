import { Command, Option } from 'commander';
import {
  DEFAULT_MTU,
  LOOPBACK_MTU,
  MAX_MTU,
  MIN_MTU,
  releaseNativeResources,
} from '../rtc/peer.js';
import { DEFAULT_BUS_OPTIONS } from '../bus/stream-config.js';
import { DEFAULT_PORT, DEFAULT_SERVER_LIMITS } from '../server/server.js';
import { DEFAULT_RECORD_QUEUE_BYTES } from '../server/recorder.js';
import { DEFAULT_VIEWER_OPTIONS } from '../server/viewer.js';
import { SENDER_DEFAULTS } from '../sender/defaults.js';
import { readFileSync } from 'node:fs';
import { DEFAULT_PRECISION, POINT_ENCODING_NAMES } from '../wire/encodings/index.js';
import { MIN_MESSAGE_BYTES } from '../wire/frame.js';
import type { PointEncodingName } from '../wire/encodings/index.js';
import { ErrorCodes } from '../errors.js';
import type { ErrorCode, PointstreamError } from '../errors.js';
import { readTokenFile } from '../server/auth.js';
import { createCliLogger } from './log.js';
import type { LogFormat } from './log.js';
import { formatDemoServer, runDemo } from './demo.js';
import {
  LOG_LEVELS,
  choice,
  collectWords,
  fieldList,
  fieldPrecisionList,
  integer,
  number,
  offerUrl,
  portRange,
  streamName,
} from './options.js';
import type { LogLevel } from './options.js';
import { runServe } from './serve.js';
import { runFront } from './front.js';
import { DEFAULT_FORWARD_TIMEOUT_MS } from '../front/front.js';
import { formatSummary, runSend } from './send.js';
import { formatConsumeSummary, runConsume } from './consume.js';
import type { ConsumeSummary } from './consume.js';
import type { SendCommandOptions, SendSummary } from './send.js';

/** Exit codes of the CLI (README "Exit codes"). */
export const ExitCode = {
  OK: 0,
  FRAMES_NOT_ACKED: 1,
  USAGE: 2,
  CONNECT_FAILED: 3,
  UNAUTHORIZED: 4,
  REFUSED: 5,
  TLS: 6,
  INTERRUPTED: 130,
} as const;

/** The exit code for how a run ended. */
function exitCodeFor(code: ErrorCode | undefined, ok: boolean): number {
  if (ok) return ExitCode.OK;
  switch (code) {
    case ErrorCodes.ABORTED:
      return ExitCode.INTERRUPTED;
    case ErrorCodes.UNAUTHORIZED:
      return ExitCode.UNAUTHORIZED;
    case ErrorCodes.SIGNALING_REJECTED:
      return ExitCode.REFUSED;
    case ErrorCodes.SIGNALING_TLS:
      return ExitCode.TLS;
    case ErrorCodes.SIGNALING_FAILED:
    case ErrorCodes.CONNECT_TIMEOUT:
      return ExitCode.CONNECT_FAILED;
    default:
      return ExitCode.FRAMES_NOT_ACKED;
  }
}

// One version, package.json's (../../package.json from both src/cli and dist/cli), so that
// `--version` cannot drift from the package.
const { version } = JSON.parse(
  readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
) as { version: string };

/** The command being run, for the `--help` pointer after a usage error. */
let activeCommand = '';

/** One line after a usage error: the error stays in view (the whole help would scroll it away). */
const helpPointer = (command: string): string =>
  `Run 'pointstream${command ? ` ${command}` : ''} --help' for the ${command ? 'options' : 'commands'}.`;

const program = new Command('pointstream')
  .description('Stream live 3D point clouds over encrypted WebRTC DataChannels')
  .version(version)
  .showHelpAfterError(helpPointer(''))
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : ExitCode.USAGE))
  .hook('preAction', (_program, command) => {
    activeCommand = command.name();
  });

const logOptions = (
  command: Command,
  defaultLevel: LogLevel,
  env: (option: Option) => Option = (option) => option,
): Command =>
  command
    .addOption(
      env(
        new Option('--log-level <level>', 'log level')
          .choices(LOG_LEVELS)
          .default(defaultLevel)
          .argParser(choice(LOG_LEVELS)),
      ),
    )
    .addOption(
      env(
        new Option(
          '--log-format <format>',
          'log format (default: pretty on a terminal, else json)',
        ).choices(['json', 'pretty']),
      ),
    );

/** `--max-sessions` -> `POINTSTREAM_MAX_SESSIONS`. */
const envNameOf = (option: Option): string =>
  `POINTSTREAM_${(option.long ?? '').replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`;
/** Gives a serve option its environment variable (the flag wins over it). */
const serveEnv = (option: Option): Option =>
  option.long === undefined || option.long === '--help' || option.envVar !== undefined
    ? option
    : option.env(envNameOf(option));

/** A boolean flag from the environment: 1/true/yes/on or 0/false/no/off (commander takes any value as on). */
function envBoolean(option: string): boolean {
  const name = `POINTSTREAM_${option.replace(/-/g, '_').toUpperCase()}`;
  const value = (process.env[name] ?? '').trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['', '0', 'false', 'no', 'off'].includes(value)) return false;
  return usageError(
    `${name}: expected 1, true, yes, on or 0, false, no, off; got ${JSON.stringify(value)}`,
  );
}

// Every serve flag can also come from the environment, POINTSTREAM_<FLAG> (what a service manager
// sets); a flag on the command line wins.
/** `--tls-cert`/`--tls-key` and `--token-file` of `serve` and `front`, read and checked (usage errors). */
function readSecurityFlags(opts: {
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  tokenFile?: string | undefined;
}): { tls: { cert: Buffer; key: Buffer } | undefined; tokens: string[] | undefined } {
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined))
    usageError('--tls-cert and --tls-key go together');
  const tls =
    opts.tlsCert && opts.tlsKey
      ? {
          cert: readFlagFile('--tls-cert', opts.tlsCert),
          key: readFlagFile('--tls-key', opts.tlsKey),
        }
      : undefined;
  let tokens: string[] | undefined;
  if (opts.tokenFile !== undefined) {
    try {
      tokens = readTokenFile(opts.tokenFile);
    } catch (error) {
      usageError(
        `--token-file: cannot read ${JSON.stringify(opts.tokenFile)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      );
    }
    if (tokens.length === 0)
      usageError(`--token-file: ${JSON.stringify(opts.tokenFile)} holds no token`);
  }
  return { tls, tokens };
}

const serveCommand = program.command('serve');
serveCommand.createOption = (flags, description) => serveEnv(new Option(flags, description));

logOptions(
  serveCommand
    .description('run the signaling server and receive frames')
    .option('--host <address>', 'interface for HTTP signaling', '0.0.0.0')
    .option(
      '--port <port>',
      'port for HTTP signaling (0: any free port)',
      integer(0, 65535),
      DEFAULT_PORT,
    )
    .option(
      '--rtc-bind <address>',
      'address WebRTC binds to (default: --host when it is a specific address)',
    )
    .option('--port-range <begin-end>', 'UDP ports for WebRTC, e.g. 40000-40100', portRange)
    .option(
      '--mtu <bytes>',
      `packet size for WebRTC (default: ${LOOPBACK_MTU} when WebRTC binds to loopback, else ${DEFAULT_MTU})`,
      integer(MIN_MTU, MAX_MTU),
    )
    .option(
      '--ice-server <url>',
      'STUN/TURN server (repeatable; env: space-separated)',
      collectWords,
      [],
    )
    .option(
      '--max-sessions <n>',
      'most concurrent sessions',
      integer(1),
      DEFAULT_SERVER_LIMITS.maxSessions,
    )
    .option(
      '--max-frame-bytes <n>',
      'largest frame payload in bytes',
      integer(1),
      DEFAULT_SERVER_LIMITS.maxFrameBytes,
    )
    .option(
      '--max-points <n>',
      'most points per frame',
      integer(1),
      DEFAULT_SERVER_LIMITS.maxPointsPerFrame,
    )
    .option(
      '--connect-timeout <ms>',
      'time for a session to open its channel',
      integer(1),
      DEFAULT_SERVER_LIMITS.connectTimeoutMs,
    )
    .option(
      '--idle-timeout <ms>',
      'close sessions silent for this long',
      integer(1),
      DEFAULT_SERVER_LIMITS.idleTimeoutMs,
    )
    .option('--allow-non-finite', 'accept NaN and infinite coordinates')
    .option(
      '--incremental-gc',
      "keep V8's incremental marking (serve turns it off: at line rate it costs ~10% CPU)",
    )
    .option(
      '--record <dir>',
      'write every verified frame as .npy: <dir>/<stream>/<start>_<session>/<seq>.npy + manifest.jsonl (frames with fields: a structured .npy, named columns)',
    )
    .option(
      '--record-queue-bytes <n>',
      'bytes of frames that may wait for the disk',
      integer(1),
      DEFAULT_RECORD_QUEUE_BYTES,
    )
    .option('--tls-cert <file>', 'PEM certificate (chain): serve signaling over HTTPS')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .addOption(
      new Option('--token-file <file>', 'bearer tokens, one per line: turns on auth').env(
        'POINTSTREAM_TOKEN_FILE',
      ),
    )
    .option(
      '--cors-origin <origin>',
      'browser origin allowed to call signaling (repeatable; env: space-separated)',
      collectWords,
      [],
    )
    .option(
      '--max-sessions-per-client <n>',
      'sessions per token and per address',
      integer(1),
      DEFAULT_SERVER_LIMITS.maxSessionsPerClient,
    )
    .option(
      '--max-offers-per-minute <n>',
      'offers per token and per address per minute',
      integer(1),
      DEFAULT_SERVER_LIMITS.maxOffersPerMinute,
    )
    .option(
      '--max-reassembly-bytes <n>',
      'bytes all sessions may hold in reassembly',
      integer(1),
      DEFAULT_SERVER_LIMITS.maxTotalReassemblyBytes,
    )
    .option(
      '--max-plain-bytes <n>',
      'largest plain-form message (one whole .npy frame) a session accepts',
      integer(1),
      DEFAULT_SERVER_LIMITS.maxPlainMessageBytes,
    )
    .option(
      '--max-viewers <n>',
      'live browser viewers at once',
      integer(1),
      DEFAULT_VIEWER_OPTIONS.maxViewers,
    )
    .option(
      '--viewer-max-points <n>',
      'points per frame sent to a viewer (larger frames are decimated)',
      integer(1, 5_000_000),
      DEFAULT_VIEWER_OPTIONS.maxPoints,
    )
    .option(
      '--viewer-max-fps <n>',
      'frames per second sent to a viewer',
      integer(1, 60),
      DEFAULT_VIEWER_OPTIONS.maxFps,
    )
    .option(
      '--bus <url>',
      'publish every verified frame to NATS JetStream (nats://host:4222); receipts wait for its acks',
    )
    .option('--node-id <id>', "this node's id on the bus (default: the host name)")
    .option('--bus-stream <name>', 'JetStream stream for frames', DEFAULT_BUS_OPTIONS.streamName)
    .option(
      '--bus-max-age <s>',
      `seconds the stream keeps a frame (default ${DEFAULT_BUS_OPTIONS.maxAgeMs / 1000})`,
      integer(1),
    )
    .option(
      '--bus-max-bytes <n>',
      `bytes the stream keeps (default ${DEFAULT_BUS_OPTIONS.maxBytes}: 4 GiB)`,
      integer(1),
    )
    .addOption(
      serveEnv(
        new Option(
          '--bus-discard <policy>',
          'stream full: drop its oldest frames, or refuse new ones (their receipts fail) (default old)',
        ).choices(['old', 'new']),
      ),
    )
    .option(
      '--bus-replicas <n>',
      `copies of each message in a NATS cluster (default ${DEFAULT_BUS_OPTIONS.replicas})`,
      integer(1, 5),
    )
    .option(
      '--drain-timeout <s>',
      'with --bus, SIGTERM drains: new offers refused, clients told to move to another node; seconds to wait for them before closing (default 10)',
      integer(1, 3600),
    ),
  'info',
  serveEnv,
).action(
  async (opts: {
    host: string;
    port: number;
    rtcBind?: string;
    mtu?: number;
    portRange?: [number, number];
    iceServer: string[];
    maxSessions: number;
    maxFrameBytes: number;
    maxPoints: number;
    connectTimeout: number;
    idleTimeout: number;
    allowNonFinite?: boolean;
    incrementalGc?: boolean;
    record?: string;
    recordQueueBytes: number;
    tlsCert?: string;
    tlsKey?: string;
    tokenFile?: string;
    corsOrigin: string[];
    maxSessionsPerClient: number;
    maxOffersPerMinute: number;
    maxReassemblyBytes: number;
    maxPlainBytes: number;
    maxViewers: number;
    viewerMaxPoints: number;
    viewerMaxFps: number;
    bus?: string;
    nodeId?: string;
    busStream: string;
    busMaxAge?: number;
    busMaxBytes?: number;
    busDiscard?: 'old' | 'new';
    busReplicas?: number;
    drainTimeout?: number;
    logLevel: LogLevel;
    logFormat?: LogFormat;
  }) => {
    for (const [key, flag] of [
      ['allowNonFinite', 'allow-non-finite'],
      ['incrementalGc', 'incremental-gc'],
    ] as const) {
      if (serveCommand.getOptionValueSource(key) === 'env') opts[key] = envBoolean(flag);
    }
    const { tls, tokens } = readSecurityFlags(opts);
    const busFlags = [
      'nodeId',
      'busMaxAge',
      'busMaxBytes',
      'busDiscard',
      'busReplicas',
      'drainTimeout',
    ] as const;
    const stray = busFlags.find((key) => opts[key] !== undefined);
    if (opts.bus === undefined && stray !== undefined)
      usageError(`--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --bus`);
    const bus =
      opts.bus === undefined
        ? undefined
        : {
            url: opts.bus,
            nodeId: opts.nodeId,
            streamName: opts.busStream,
            maxAgeMs: opts.busMaxAge === undefined ? undefined : opts.busMaxAge * 1000,
            maxBytes: opts.busMaxBytes,
            discard: opts.busDiscard,
            replicas: opts.busReplicas,
          };
    const logger = createCliLogger(opts.logLevel, opts.logFormat, 1);
    await startServe(logger, {
      bus,
      drainTimeoutMs: opts.drainTimeout === undefined ? undefined : opts.drainTimeout * 1000,
      record:
        opts.record === undefined
          ? undefined
          : { dir: opts.record, maxQueuedBytes: opts.recordQueueBytes },
      tls,
      tokens,
      corsOrigins: opts.corsOrigin,
      viewer: {
        maxViewers: opts.maxViewers,
        maxPoints: opts.viewerMaxPoints,
        maxFps: opts.viewerMaxFps,
      },
      host: opts.host,
      port: opts.port,
      rtcBind: opts.rtcBind,
      mtu: opts.mtu,
      portRange: opts.portRange,
      iceServers: opts.iceServer,
      limits: {
        maxSessions: opts.maxSessions,
        maxFrameBytes: opts.maxFrameBytes,
        maxPointsPerFrame: opts.maxPoints,
        connectTimeoutMs: opts.connectTimeout,
        idleTimeoutMs: opts.idleTimeout,
        allowNonFinite: opts.allowNonFinite === true,
        maxSessionsPerClient: opts.maxSessionsPerClient,
        maxOffersPerMinute: opts.maxOffersPerMinute,
        maxTotalReassemblyBytes: opts.maxReassemblyBytes,
        maxPlainMessageBytes: opts.maxPlainBytes,
      },
    });
  },
);

async function startServe(
  logger: Parameters<typeof runServe>[0]['logger'],
  options: Omit<Parameters<typeof runServe>[0], 'logger'>,
): Promise<void> {
  try {
    await runServe({ ...options, logger });
  } catch (error) {
    // Bad option values (RangeError/TypeError) are usage errors; the rest (port in use...) not.
    if (error instanceof RangeError || error instanceof TypeError) usageError(error.message);
    // An unusable --record directory, found before listening.
    const code = (error as PointstreamError).code;
    if (code === ErrorCodes.INVALID_OPTION) usageError((error as Error).message);
    // The bus cannot be reached (3, as a connection that failed) or its stream is unusable (5).
    if (code === ErrorCodes.BUS_UNAVAILABLE || code === ErrorCodes.BUS_STREAM_MISMATCH) {
      process.stderr.write(
        `pointstream: cannot start the server: ${code}: ${(error as Error).message}\n`,
      );
      process.exit(
        code === ErrorCodes.BUS_UNAVAILABLE ? ExitCode.CONNECT_FAILED : ExitCode.REFUSED,
      );
    }
    process.stderr.write(`pointstream: cannot start the server: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

/** Bad input on the command line: a message naming the flag, the `--help` pointer, exit code 2. */
function usageError(message: string): never {
  process.stderr.write(`pointstream: ${message}\n${helpPointer(activeCommand)}\n`);
  process.exit(ExitCode.USAGE);
}

function readFlagFile(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    return usageError(
      `${flag}: cannot read ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

interface StreamFlags {
  stream?: string;
  source: 'random' | 'lidar';
  from?: string;
  fields?: string[];
  fieldPrecision?: Record<string, number>;
  token?: string;
  ca?: string;
  reconnect: boolean;
  maxReconnects: number;
  points: number;
  rate: number;
  duration: number;
  frames?: number;
  chunkBytes: number;
  encoding: PointEncodingName;
  precision?: number;
  maxInFlight: number;
  connectTimeout: number;
  livenessTimeout: number;
  json?: boolean;
  progress?: boolean;
  dropNonFinite?: boolean;
  logLevel: LogLevel;
  logFormat?: LogFormat;
}

const streamOptions = (command: Command): Command =>
  command
    .option(
      '--stream <name>',
      'name of the stream (the sensor), kept across reconnects (default: <host>-<pid>)',
      streamName,
    )
    .option('--points <n>', 'points per frame', integer(0), 1_000_000)
    .addOption(
      new Option(
        '--source <kind>',
        'generated points: random (incompressible) or lidar (a simulated 64-beam scan)',
      )
        .choices(['random', 'lidar'])
        .default('random'),
    )
    .option(
      '--from <path>',
      'send frames from a .npy, .ply, .pcd or text (.xyz/.txt/.csv) file, with every per-point field it holds (docs/point-files.md), or a directory of .npy files (a recording)',
    )
    .option(
      '--fields <names>',
      'name the columns of an (N, K) .npy or a text file without a header given to --from, e.g. x,y,z,intensity (x, y, z among them; _ skips a column); without it columns after the third are dropped',
      fieldList,
    )
    .option(
      '--field-precision <name=maxError,...>',
      'largest error per float field with --encoding q16/qrice, e.g. intensity=0.01,time=1e-6 (default: every field lossless)',
      fieldPrecisionList,
    )
    .option('--rate <hz>', 'frames per second (0: as fast as possible)', number(0, 1000), 4)
    .option('--duration <seconds>', 'how long to stream', number(0), 60)
    .option('--frames <n>', 'number of frames (overrides rate x duration)', integer(0))
    .option(
      '--chunk-bytes <n>',
      'largest chunk message, capped by the server',
      integer(MIN_MESSAGE_BYTES, 64 * 1024 * 1024),
      SENDER_DEFAULTS.maxMessageBytes,
    )
    .addOption(
      new Option(
        '--encoding <name>',
        'how points travel: raw (float32, lossless), q16 (6 bytes/point) or qrice (quantized to --precision, compressed)',
      )
        .choices([...POINT_ENCODING_NAMES])
        .default('raw'),
    )
    .option(
      '--precision <metres>',
      `largest error per coordinate for --encoding qrice (default ${DEFAULT_PRECISION})`,
      number(1e-9, 1e6),
    )
    .option(
      '--max-in-flight <n>',
      'unacknowledged frames before waiting',
      integer(1, 64),
      SENDER_DEFAULTS.maxFramesInFlight,
    )
    .option(
      '--connect-timeout <ms>',
      'time to open the channel',
      integer(1),
      SENDER_DEFAULTS.connectTimeoutMs,
    )
    .option(
      '--liveness-timeout <ms>',
      'with a server that sends heartbeats: silence after which it counts as gone (PS_ERR_PEER_SILENT) and send reconnects at once',
      integer(1, 600_000),
      SENDER_DEFAULTS.livenessTimeoutMs,
    )
    .addOption(
      new Option('--token <token>', 'bearer token for a server with auth').env('POINTSTREAM_TOKEN'),
    )
    .option(
      '--ca <file>',
      'PEM CA certificate to trust for an HTTPS server with a private certificate',
    )
    .option('--no-reconnect', 'stop at the first connection failure instead of reconnecting')
    .option(
      '--max-reconnects <n>',
      'reconnect attempts per outage before giving up',
      integer(0, 1000),
      5,
    )
    .option('--json', 'print the summary as one JSON line (last line of output)')
    .option('--no-progress', 'no progress line (default: shown on a terminal)')
    .option(
      '--drop-non-finite',
      'drop points with a NaN or infinite coordinate (depth cameras, organised clouds) instead of stopping',
    );

function streamSettings(
  opts: StreamFlags,
  signal: AbortSignal,
  logger: SendCommandOptions['logger'],
): Omit<SendCommandOptions, 'signalingUrl' | 'bindAddress' | 'mtu'> {
  if (opts.fieldPrecision !== undefined && opts.encoding === 'raw')
    usageError(
      '--field-precision applies to --encoding q16 or qrice (raw frames carry every field as it is)',
    );
  if (opts.fields !== undefined && opts.from === undefined)
    usageError('--fields names the columns of a --from file');
  return {
    stream: opts.stream,
    points: opts.points,
    from: opts.from,
    fields: opts.fields,
    fieldPrecision: opts.fieldPrecision,
    dropNonFinite: opts.dropNonFinite === true,
    source: opts.source,
    rate: opts.rate,
    duration: opts.duration,
    frames: opts.frames,
    chunkBytes: opts.chunkBytes,
    encoding: opts.encoding,
    precision: opts.precision,
    maxInFlight: opts.maxInFlight,
    connectTimeoutMs: opts.connectTimeout,
    livenessTimeoutMs: opts.livenessTimeout,
    token: opts.token,
    ca: opts.ca === undefined ? undefined : readFlagFile('--ca', opts.ca),
    reconnect: opts.reconnect,
    maxReconnects: opts.maxReconnects,
    progress: opts.progress !== false && process.stderr.isTTY === true && opts.json !== true,
    logger,
    signal,
  };
}

/** SIGINT stops sending; the summary still prints. A second SIGINT exits at once. */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  process.on('SIGINT', () => {
    if (controller.signal.aborted) process.exit(ExitCode.INTERRUPTED);
    controller.abort(new Error('interrupted'));
  });
  return controller.signal;
}

/** Prints the summary (JSON: one line, last) and sets the exit code from it. */
function finish(summary: SendSummary, json: object | undefined, extra?: string): void {
  if (json) process.stdout.write(`${JSON.stringify(json)}\n`);
  else process.stdout.write(`${formatSummary(summary)}${extra ? `\n${extra}` : ''}\n`);
  process.exitCode = exitCodeFor(summary.errorCode, summary.ok);
}

const INPUT_ERRORS = /^PS_ERR_(SOURCE|PLY|PCD|NPY|FIELDS)_/;

function failConnect(error: unknown, json: boolean): void {
  // runSend refuses bad settings (a run that plans no frame) before connecting.
  if (error instanceof RangeError) usageError(error.message);
  const code = (error as PointstreamError).code ?? ErrorCodes.CONNECTION_FAILED;
  if (INPUT_ERRORS.test(code)) {
    if (json)
      process.stdout.write(
        `${JSON.stringify({ ok: false, errorCode: code, reason: (error as Error).message })}\n`,
      );
    usageError(`--from: ${(error as Error).message} (${code})`);
  }
  const message = (error as Error).message;
  if (json)
    process.stdout.write(`${JSON.stringify({ ok: false, errorCode: code, reason: message })}\n`);
  process.stderr.write(`pointstream: cannot stream: ${message} (${code})\n`);
  const exit = exitCodeFor(code, false);
  process.exitCode = exit === ExitCode.FRAMES_NOT_ACKED ? ExitCode.CONNECT_FAILED : exit;
}

logOptions(
  streamOptions(
    program
      .command('send')
      .description('stream frames of random points to a server')
      // Checked in the action rather than by commander, whose missing-option error would come
      // before (and hide) its "did you mean" for a misspelt option such as --signalling.
      .option(
        '--signaling <url>',
        "the server's URL as serve logs it, or its offer endpoint: http://localhost:8080[/offer] (required)",
        offerUrl,
      )
      .option(
        '--rtc-bind <address>',
        'address WebRTC binds to (default: the signaling address when the server is on this machine, else all)',
      )
      .option(
        '--mtu <bytes>',
        `packet size for WebRTC (default: ${LOOPBACK_MTU} when the server is on this machine, else ${DEFAULT_MTU})`,
        integer(MIN_MTU, MAX_MTU),
      ),
  ),
  'warn',
).action(async (opts: StreamFlags & { signaling?: string; rtcBind?: string; mtu?: number }) => {
  if (opts.signaling === undefined) usageError("required option '--signaling <url>' not specified");
  const logger = createCliLogger(opts.logLevel, opts.logFormat, 2);
  const settings = streamSettings(opts, interruptSignal(), logger);
  try {
    const summary = await runSend({
      ...settings,
      signalingUrl: opts.signaling,
      bindAddress: opts.rtcBind,
      mtu: opts.mtu,
    });
    finish(summary, opts.json ? summary : undefined);
  } catch (error) {
    failConnect(error, opts.json === true);
  }
  releaseNativeResources();
});

logOptions(
  streamOptions(
    program
      .command('demo')
      .description('run a server and a client on loopback and print the result'),
  ).addOption(
    new Option('--server-log-level <level>', "the server's log level")
      .choices(LOG_LEVELS)
      .default('warn'),
  ),
  'warn',
).action(async (opts: StreamFlags & { serverLogLevel: string }) => {
  const logger = createCliLogger(opts.logLevel, opts.logFormat, 2);
  const settings = streamSettings(opts, interruptSignal(), logger);
  try {
    const summary = await runDemo(settings, opts.serverLogLevel, logger);
    finish(
      summary.client,
      opts.json ? { ...summary.client, server: summary.server } : undefined,
      formatDemoServer(summary),
    );
  } catch (error) {
    failConnect(error, opts.json === true);
  }
  releaseNativeResources();
});

// --- consume (issue 16): frames from the bus, as `serve` logs and records them ---
logOptions(
  program
    .command('consume')
    .description('read verified frames from the bus (NATS JetStream): log, record, count losses')
    .option('--bus <url>', 'the NATS server, nats://HOST:PORT (required)')
    .option('--stream <name>', "the stream to read, or 'all'", 'all')
    .option(
      '--record <dir>',
      'write every frame as serve --record does: <dir>/<stream>/<start>_<session>/<seq>.npy + manifest.jsonl',
    )
    .option('--latest', 'only the newest complete frame of each stream, from now on (dashboards)')
    .option(
      '--durable <name>',
      'durable consumer name: a restart resumes after its last frame (default ps-consume-<stream>)',
    )
    .option('--bus-stream <name>', 'the JetStream stream', 'PS_FRAMES')
    .option('--json', 'print the summary as one JSON line (last line of output)'),
  'info',
).action(
  async (opts: {
    bus?: string;
    stream: string;
    record?: string;
    latest?: boolean;
    durable?: string;
    busStream: string;
    json?: boolean;
    logLevel: LogLevel;
    logFormat?: LogFormat;
  }) => {
    if (opts.bus === undefined) usageError("required option '--bus <url>' not specified");
    if (!/^(nats|tls|ws|wss):\/\/\S+$/.test(opts.bus))
      usageError(`--bus: expected nats://HOST:PORT, got ${JSON.stringify(opts.bus)}`);
    if (opts.stream !== 'all') {
      try {
        streamName(opts.stream);
      } catch (error) {
        usageError(`--stream: ${(error as Error).message}`);
      }
    }
    if (opts.durable !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(opts.durable))
      usageError(
        `--durable: letters, digits, _ and - (at most 64), got ${JSON.stringify(opts.durable)}`,
      );
    if (opts.latest === true && opts.durable !== undefined)
      usageError('--latest reads from now on and keeps no position: it takes no --durable');
    const logger = createCliLogger(opts.logLevel, opts.logFormat, 2);
    let summary: ConsumeSummary;
    try {
      summary = await runConsume({
        bus: opts.bus,
        stream: opts.stream === 'all' ? undefined : opts.stream,
        durable: opts.durable,
        latest: opts.latest === true,
        streamName: opts.busStream,
        record: opts.record,
        logger,
      });
    } catch (error) {
      const code = (error as PointstreamError).code;
      if (code === ErrorCodes.INVALID_OPTION) usageError((error as Error).message);
      if (error instanceof RangeError || error instanceof TypeError) usageError(error.message);
      const message = (error as Error).message;
      if (opts.json)
        process.stdout.write(
          `${JSON.stringify({ ok: false, errorCode: code, reason: message })}\n`,
        );
      process.stderr.write(`pointstream: cannot consume: ${message} (${code ?? 'error'})\n`);
      logger.flush();
      process.exit(
        code === ErrorCodes.BUS_STREAM_MISMATCH ? ExitCode.REFUSED : ExitCode.CONNECT_FAILED,
      );
    }
    process.stdout.write(
      opts.json ? `${JSON.stringify(summary)}\n` : `${formatConsumeSummary(summary)}\n`,
    );
    logger.flush();
    process.exitCode = ExitCode.OK;
  },
);
// --- end consume ---

// --- front (issue 17): the cluster's public signaling address ---
// Every front flag can also come from the environment, POINTSTREAM_<FLAG>, as serve's.
const frontCommand = program.command('front');
frontCommand.createOption = (flags, description) => serveEnv(new Option(flags, description));
logOptions(
  frontCommand
    .description(
      "the cluster's signaling address: places each offer on a serve --bus node with room and forwards it over NATS",
    )
    .option('--bus <url>', 'the NATS server the nodes use, nats://HOST:PORT (required)')
    .option('--host <address>', 'interface for HTTP signaling', '0.0.0.0')
    .option(
      '--port <port>',
      'port for HTTP signaling (0: any free port)',
      integer(0, 65535),
      DEFAULT_PORT,
    )
    .option('--tls-cert <file>', 'PEM certificate (chain): serve signaling over HTTPS')
    .option('--tls-key <file>', 'PEM private key for --tls-cert')
    .addOption(
      new Option(
        '--token-file <file>',
        "bearer tokens, one per line: turns on auth (the nodes' --token-file must hold the same)",
      ).env('POINTSTREAM_TOKEN_FILE'),
    )
    .option(
      '--cors-origin <origin>',
      'browser origin allowed to call signaling (repeatable; env: space-separated)',
      collectWords,
      [],
    )
    .option(
      '--max-offers-per-minute <n>',
      'offers per token and per address per minute',
      integer(1),
      DEFAULT_SERVER_LIMITS.maxOffersPerMinute,
    )
    .option(
      '--forward-timeout <ms>',
      'time a node has to answer a forwarded request before the next node is tried',
      integer(1, 600_000),
      DEFAULT_FORWARD_TIMEOUT_MS,
    )
    .addHelpText(
      'after',
      '\nRun any number of fronts behind one address; nodes are `pointstream serve --bus URL`.\n' +
        'No node with room: 503 PS_ERR_SERVER_FULL with Retry-After: 1. Exit code 3: NATS cannot be reached.',
    ),
  'info',
  serveEnv,
).action(
  async (opts: {
    bus?: string;
    host: string;
    port: number;
    tlsCert?: string;
    tlsKey?: string;
    tokenFile?: string;
    corsOrigin: string[];
    maxOffersPerMinute: number;
    forwardTimeout: number;
    logLevel: LogLevel;
    logFormat?: LogFormat;
  }) => {
    if (opts.bus === undefined) usageError("required option '--bus <url>' not specified");
    if (!/^(nats|tls|ws|wss):\/\/\S+$/.test(opts.bus))
      usageError(`--bus: expected nats://HOST:PORT, got ${JSON.stringify(opts.bus)}`);
    const { tls, tokens } = readSecurityFlags(opts);
    const logger = createCliLogger(opts.logLevel, opts.logFormat, 1);
    try {
      await runFront({
        bus: opts.bus,
        host: opts.host,
        port: opts.port,
        tls,
        tokens,
        corsOrigins: opts.corsOrigin,
        limits: { maxOffersPerMinute: opts.maxOffersPerMinute },
        forwardTimeoutMs: opts.forwardTimeout,
        logger,
      });
    } catch (error) {
      if (error instanceof RangeError || error instanceof TypeError) usageError(error.message);
      const code = (error as PointstreamError).code;
      if (code === ErrorCodes.INVALID_OPTION) usageError((error as Error).message);
      process.stderr.write(
        `pointstream: cannot start the front: ${code === undefined ? '' : `${code}: `}${(error as Error).message}\n`,
      );
      logger.flush();
      // NATS cannot be reached: 3, as a connection that failed (serve --bus does the same).
      process.exit(code === ErrorCodes.BUS_UNAVAILABLE ? ExitCode.CONNECT_FAILED : 1);
    }
  },
);
// --- end front ---

// Each command points at its own help after a usage error.
for (const command of program.commands) command.showHelpAfterError(helpPointer(command.name()));

await program.parseAsync(process.argv);
