/**
 * Ceiling benchmark: bare node-datachannel throughput on loopback, no framing.
 *
 * The parent process is the sender (offerer); it forks itself with `--role receiver` as the
 * answerer. Signalling (SDP, candidates, results) goes over the fork IPC channel. Both peers bind
 * to 127.0.0.1 and use no ICE servers, so nothing but loopback is touched.
 *
 * Connection set-up follows the order that avoids a libdatachannel race:
 *   1. sender waits for ICE gathering to complete, sends its offer with every `a=candidate:` and
 *      `a=end-of-candidates` line removed;
 *   2. receiver sets the offer, waits for its own gathering to complete, returns its full answer;
 *   3. sender applies the answer, and only then sends its own candidates (addRemoteCandidate).
 *
 * Usage:
 *   npx tsx bench/ceilings/bare-datachannel.ts [--chunk-bytes N] [--total-bytes N]
 *       [--max-message-size N] [--mtu N] [--high-water N] [--low-water N]
 *       [--sctp-recv-buffer N] [--sctp-send-buffer N] [--timeout-ms N] [--pin] [--skip-cleanup]
 *       [--channels N] [--peers N] [--thread-cpu] [--json]
 *
 *   --mtu           RtcConfig.mtu of both peers (default: libdatachannel's, 1280).
 *   --channels N    N data channels on each peer connection (default 1).
 *   --peers N       N peer connections (default 1). The stream is striped over all
 *                   peers x channels "lanes": message i goes to lane i mod lanes (strict
 *                   round-robin), and each lane has its own --high-water/--low-water flow control,
 *                   so up to lanes x high-water bytes may be buffered. The receiver counts bytes
 *                   over all lanes; the run ends when all bytes arrived.
 *   --thread-cpu    (Linux) add each process's CPU seconds during the transfer per thread name
 *                   (from /proc/self/task), to see which native threads do the work.
 *   --pin           pin the sender process (all its threads) to CPU 0 and the receiver to CPU 1
 *                   with taskset(1), so each side really gets exactly one core.
 *   --skip-cleanup  don't call nodeDataChannel.cleanup() at the end (to check whether the
 *                   processes still exit on their own; the sender does not).
 *
 * MB/s uses 1 MB = 1e6 bytes, measured from the sender's first send to the receiver's last byte.
 * Timestamps are wall-clock milliseconds (performance.timeOrigin + performance.now()) in both
 * processes, which share one clock on this machine.
 */
import { fork, spawnSync, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import nodeDataChannel from 'node-datachannel';
import type { DataChannel, PeerConnection } from 'node-datachannel';

// ---------------------------------------------------------------------------------------------
// CLI

const { values: opts } = parseArgs({
  options: {
    role: { type: 'string', default: 'sender' },
    'chunk-bytes': { type: 'string', default: String(262144) },
    'total-bytes': { type: 'string', default: String(12_000_000 * 40) },
    'max-message-size': { type: 'string', default: String(262144 + 1024) },
    'high-water': { type: 'string', default: String(4 * 1024 * 1024) },
    'low-water': { type: 'string', default: String(1024 * 1024) },
    'sctp-recv-buffer': { type: 'string' },
    'sctp-send-buffer': { type: 'string' },
    mtu: { type: 'string' },
    'timeout-ms': { type: 'string', default: String(120_000) },
    'skip-cleanup': { type: 'boolean', default: false },
    pin: { type: 'boolean', default: false },
    channels: { type: 'string', default: '1' },
    peers: { type: 'string', default: '1' },
    'thread-cpu': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
  strict: true,
  allowPositionals: false,
});

function intOpt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive integer, got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return n;
}

const role = opts.role;
if (role !== 'sender' && role !== 'receiver') {
  console.error(`--role must be sender or receiver, got ${JSON.stringify(role)}`);
  process.exit(2);
}
const chunkBytes = intOpt('chunk-bytes', opts['chunk-bytes'])!;
const totalBytes = intOpt('total-bytes', opts['total-bytes'])!;
const maxMessageSize = intOpt('max-message-size', opts['max-message-size'])!;
const highWater = intOpt('high-water', opts['high-water'])!;
const lowWater = intOpt('low-water', opts['low-water'])!;
const sctpRecvBuffer = intOpt('sctp-recv-buffer', opts['sctp-recv-buffer']);
const sctpSendBuffer = intOpt('sctp-send-buffer', opts['sctp-send-buffer']);
const mtu = intOpt('mtu', opts.mtu);
const timeoutMs = intOpt('timeout-ms', opts['timeout-ms'])!;
const skipCleanup = opts['skip-cleanup'];
const pin = opts.pin;
const jsonOut = opts.json;
const channelsPerPeer = intOpt('channels', opts.channels)!;
const peerCount = intOpt('peers', opts.peers)!;
const laneCount = channelsPerPeer * peerCount;
const threadCpuOut = opts['thread-cpu'];

if (chunkBytes > maxMessageSize) {
  console.error(`--chunk-bytes ${chunkBytes} exceeds --max-message-size ${maxMessageSize}`);
  process.exit(2);
}
if (lowWater >= highWater) {
  console.error(`--low-water ${lowWater} must be below --high-water ${highWater}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

const now = (): number => performance.timeOrigin + performance.now();

/** Sum of user+system CPU microseconds since `base`, as seconds. */
function cpuSecondsSince(base: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(base);
  return (d.user + d.system) / 1e6;
}

/** Number of threads of this process (Linux), or null where /proc is not available. */
function threadCount(): number | null {
  try {
    return readdirSync('/proc/self/task').length;
  } catch {
    return null;
  }
}

/** Per-thread CPU ticks (utime + stime) keyed by thread id, with the thread's name. */
type ThreadTicks = Map<string, { name: string; ticks: number }>;

function threadTicks(): ThreadTicks {
  const out: ThreadTicks = new Map();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // "tid (comm) state ..." - comm may contain spaces, so split after the last ')'.
      const close = stat.lastIndexOf(')');
      // The main thread (tid = pid) is named "node" like V8's helper threads; tell it apart.
      const name = tid === String(process.pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
      const ticks = Number(fields[11]) + Number(fields[12]);
      out.set(tid, { name, ticks });
    } catch {
      /* thread exited meanwhile */
    }
  }
  return out;
}

let clockTicksPerSec: number | undefined;

/** CPU seconds per thread name between two snapshots (threads that ran, largest first). */
function threadCpuSince(base: ThreadTicks): Record<string, number> {
  clockTicksPerSec ??=
    Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
  const byName = new Map<string, { sec: number; threads: number }>();
  for (const [tid, t] of threadTicks()) {
    const d = t.ticks - (base.get(tid)?.ticks ?? 0);
    if (d <= 0) continue;
    const e = byName.get(t.name) ?? { sec: 0, threads: 0 };
    e.sec += d / clockTicksPerSec;
    e.threads++;
    byName.set(t.name, e);
  }
  // "RTC worker x2": two threads of that name ran.
  return Object.fromEntries(
    [...byName]
      .sort((a, b) => b[1].sec - a[1].sec)
      .map(([k, e]) => [e.threads > 1 ? `${k} x${e.threads}` : k, round(e.sec, 2)]),
  );
}

function log(msg: string): void {
  if (!jsonOut) process.stderr.write(`[${role}] ${msg}\n`);
}

/** Must run before any PeerConnection is created. Both processes call it with the same values. */
function applySctpSettings(): void {
  if (sctpRecvBuffer === undefined && sctpSendBuffer === undefined) return;
  const settings: { recvBufferSize?: number; sendBufferSize?: number } = {};
  if (sctpRecvBuffer !== undefined) settings.recvBufferSize = sctpRecvBuffer;
  if (sctpSendBuffer !== undefined) settings.sendBufferSize = sctpSendBuffer;
  nodeDataChannel.setSctpSettings(settings);
}

/** Both peers get the same config; without --mtu, libdatachannel's default (1280) applies. */
function newPeer(name: string): PeerConnection {
  return new nodeDataChannel.PeerConnection(name, {
    iceServers: [],
    bindAddress: '127.0.0.1',
    maxMessageSize,
    ...(mtu === undefined ? {} : { mtu }),
  });
}

/** Resolves once the peer's ICE gathering state is 'complete' (checks the current state too). */
function gatheringComplete(pc: PeerConnection): Promise<void> {
  return new Promise((resolve) => {
    pc.onGatheringStateChange((state) => {
      if (state === 'complete') resolve();
    });
    if (pc.gatheringState() === 'complete') resolve();
  });
}

function stripCandidates(sdp: string): string {
  return sdp
    .split(/\r?\n/)
    .filter((line) => !line.startsWith('a=candidate:') && !line.startsWith('a=end-of-candidates'))
    .join('\r\n');
}

function countCandidates(sdp: string): number {
  return sdp.split(/\r?\n/).filter((l) => l.startsWith('a=candidate:')).length;
}

// IPC messages (parent <-> child)
// `p` is the peer connection's index (0 ..< --peers).
type ToReceiver =
  | { t: 'offer'; p: number; sdp: string }
  | { t: 'candidate'; p: number; candidate: string; mid: string }
  | { t: 'finish' };
type ToSender =
  | { t: 'answer'; p: number; sdp: string }
  | { t: 'connected' }
  | {
      t: 'done';
      firstByteAt: number;
      lastByteAt: number;
      bytes: number;
      messages: number;
      cpuSec: number;
      nonBuffer: string[];
      threads: number | null;
      threadCpu?: Record<string, number>;
    }
  | { t: 'error'; message: string }
  | { t: 'closed'; exitCode: number };

// Live references: node-datachannel closes a channel when its JS object is garbage-collected, so
// every PeerConnection / DataChannel is kept here until the very end.
const live: { pcs: PeerConnection[]; dcs: DataChannel[] } = { pcs: [], dcs: [] };

function closeAll(): void {
  for (const dc of live.dcs) {
    try {
      dc.close();
    } catch {
      /* already closed */
    }
  }
  for (const pc of live.pcs) {
    try {
      pc.close();
    } catch {
      /* already closed */
    }
  }
  if (!skipCleanup) nodeDataChannel.cleanup();
}

// ---------------------------------------------------------------------------------------------
// Receiver (child, answerer)

async function runReceiver(): Promise<void> {
  const send = (m: ToSender): void => {
    process.send!(m);
  };
  let finished = false;
  const watchdog = setTimeout(() => {
    send({ t: 'error', message: `receiver timed out after ${timeoutMs} ms` });
    process.exit(1);
  }, timeoutMs + 5_000);
  watchdog.unref();
  // If the parent dies, don't linger.
  process.on('disconnect', () => {
    if (!finished) process.exit(1);
  });

  applySctpSettings();
  let received = 0;
  let messages = 0;
  let firstByteAt = 0;
  let cpuBase: NodeJS.CpuUsage = process.cpuUsage();
  let ticksBase: ThreadTicks = new Map();
  const nonBuffer = new Set<string>();

  const onMessage = (msg: string | Buffer | ArrayBuffer): void => {
    if (received === 0) firstByteAt = now();
    messages++;
    let len: number;
    if (Buffer.isBuffer(msg)) len = msg.length;
    else if (typeof msg === 'string') {
      nonBuffer.add('string');
      len = Buffer.byteLength(msg);
    } else {
      nonBuffer.add(Object.prototype.toString.call(msg));
      len = msg.byteLength;
    }
    received += len;
    if (received >= totalBytes && !finished) {
      finished = true;
      const lastByteAt = now();
      const cpuSec = cpuSecondsSince(cpuBase);
      send({
        t: 'done',
        firstByteAt,
        lastByteAt,
        bytes: received,
        messages,
        cpuSec,
        nonBuffer: [...nonBuffer],
        threads: threadCount(),
        ...(threadCpuOut ? { threadCpu: threadCpuSince(ticksBase) } : {}),
      });
    }
  };

  // One answering peer connection per offer. The sender sends its candidates for peer p only
  // after it got our answer, so they always find the remote description set.
  const peers = new Map<number, PeerConnection>();
  const answerPeer = async (p: number, offerSdp: string): Promise<void> => {
    const pc = newPeer(`receiver-${p}`);
    live.pcs.push(pc);
    peers.set(p, pc);
    pc.onStateChange((state) => {
      log(`pc ${p} state ${state}`);
      if (state === 'failed') send({ t: 'error', message: `receiver PeerConnection ${p} failed` });
    });
    pc.onDataChannel((dc) => {
      live.dcs.push(dc);
      dc.onMessage(onMessage);
      dc.onError((err) => send({ t: 'error', message: `receiver channel error: ${err}` }));
      if (live.dcs.length === laneCount) {
        cpuBase = process.cpuUsage();
        if (threadCpuOut) ticksBase = threadTicks();
        send({ t: 'connected' });
      }
    });
    pc.setRemoteDescription(offerSdp, 'offer');
    // setRemoteDescription(offer) auto-creates the answer; wait for our candidates to be gathered.
    await gatheringComplete(pc);
    const answer = pc.localDescription();
    if (!answer) throw new Error(`receiver ${p} has no local description after gathering`);
    log(`answer ${p} ready (${countCandidates(answer.sdp)} candidates)`);
    send({ t: 'answer', p, sdp: answer.sdp });
  };

  process.on('message', (raw) => {
    const m = raw as ToReceiver;
    if (m.t === 'offer') {
      answerPeer(m.p, m.sdp).catch((err: unknown) => {
        send({ t: 'error', message: `receiver: ${String(err)}` });
      });
    } else if (m.t === 'candidate') {
      const pc = peers.get(m.p);
      if (pc) pc.addRemoteCandidate(m.candidate, m.mid);
      else send({ t: 'error', message: `receiver: candidate for unknown peer ${m.p}` });
    } else if (m.t === 'finish') {
      finished = true;
      closeAll();
      live.dcs = [];
      live.pcs = [];
      clearTimeout(watchdog);
      process.disconnect();
    }
  });
  return Promise.resolve();
}

// ---------------------------------------------------------------------------------------------
// Sender (parent, offerer)

function spawnReceiver(): ChildProcess {
  const self = fileURLToPath(import.meta.url);
  let execArgv = process.execArgv;
  if (self.endsWith('.ts') && !execArgv.some((a) => a.includes('tsx'))) {
    execArgv = [...execArgv, '--import', 'tsx'];
  }
  const args = ['--role', 'receiver'];
  for (const [k, v] of Object.entries(opts)) {
    if (k === 'role' || k === 'pin' || v === undefined || v === false) continue;
    args.push(`--${k}`);
    if (v !== true) args.push(String(v));
  }
  const stdio: StdioOptions = ['ignore', 'inherit', 'inherit', 'ipc'];
  if (pin) {
    // fork() runs `execPath ...execArgv self ...args`; taskset execs node, keeping the IPC fd.
    return fork(self, args, {
      execPath: 'taskset',
      execArgv: ['-c', '1', process.execPath, ...execArgv],
      stdio,
    });
  }
  return fork(self, args, { execArgv, stdio });
}

/** Pin every existing thread of this process to CPU 0; threads created later inherit it. */
function pinSelf(): void {
  const r = spawnSync('taskset', ['-a', '-cp', '0', String(process.pid)], { encoding: 'utf8' });
  if (r.status !== 0) {
    console.error(`--pin: taskset failed: ${r.error?.message ?? r.stderr}`);
    process.exit(2);
  }
}

export interface Result {
  chunkBytes: number;
  totalBytes: number;
  seconds: number;
  mbPerSec: number;
  senderCpuSecPer100MB: number;
  receiverCpuSecPer100MB: number;
  // extra context (not part of the core comparison)
  maxMessageSize: number;
  /** RtcConfig.mtu of both peers; null: libdatachannel's default (1280). */
  mtu: number | null;
  highWater: number;
  lowWater: number;
  sctpRecvBuffer: number | null;
  sctpSendBuffer: number | null;
  messages: number;
  connectMs: number;
  pinned: boolean;
  sendLoopSeconds: number;
  receiverSpanSeconds: number;
  senderCpuSec: number;
  receiverCpuSec: number;
  /** Data channels per peer connection (--channels). */
  channels: number;
  /** Peer connections (--peers). */
  peers: number;
  /** Threads of each process at the end of the transfer (Linux; null elsewhere). */
  senderThreads: number | null;
  receiverThreads: number | null;
  /** With --thread-cpu: CPU seconds during the transfer per thread name. */
  senderThreadCpu?: Record<string, number>;
  receiverThreadCpu?: Record<string, number>;
}

async function runSender(): Promise<void> {
  if (pin) pinSelf();
  const t0 = now();
  let finishedCleanly = false;
  const child = spawnReceiver();
  let childExit: number | null | undefined;
  const childExited = new Promise<number | null>((resolve) => {
    child.on('exit', (code, signal) => {
      childExit = code ?? (signal ? -1 : null);
      resolve(childExit);
    });
  });

  const fail = (message: string): never => {
    console.error(`bare-datachannel: FAILED: ${message}`);
    if (child.pid !== undefined && childExit === undefined) child.kill('SIGKILL');
    process.exit(1);
  };
  const overall = setTimeout(
    () =>
      fail(
        `timed out after ${timeoutMs} ms (chunk ${chunkBytes}, total ${totalBytes}); ` +
          `connection set-up or transfer stalled`,
      ),
    timeoutMs,
  );
  overall.unref();

  // Child messages
  // Keyed by type, and by peer index for answers.
  const waiters = new Map<string, (m: ToSender) => void>();
  const keyOf = (m: ToSender): string => (m.t === 'answer' ? `answer:${m.p}` : m.t);
  const waitFor = <T extends ToSender['t']>(
    t: T,
    p?: number,
  ): Promise<Extract<ToSender, { t: T }>> =>
    new Promise((resolve) =>
      waiters.set(p === undefined ? t : `${t}:${p}`, resolve as (m: ToSender) => void),
    );
  child.on('message', (raw) => {
    const m = raw as ToSender;
    if (m.t === 'error') fail(m.message);
    const key = keyOf(m);
    const w = waiters.get(key);
    if (w) {
      waiters.delete(key);
      w(m);
    }
  });
  void childExited.then((code) => {
    if (!finishedCleanly) fail(`receiver process exited early (code ${code})`);
  });
  const toChild = (m: ToReceiver): void => {
    child.send(m);
  };

  applySctpSettings();
  const connectedP = waitFor('connected');
  const doneP = waitFor('done');

  /** Creates peer p with its channels and runs the set-up order of the header comment. */
  const connectPeer = async (p: number): Promise<DataChannel[]> => {
    const pc = newPeer(`sender-${p}`);
    live.pcs.push(pc);
    const localCandidates: { candidate: string; mid: string }[] = [];
    pc.onLocalCandidate((candidate, mid) => localCandidates.push({ candidate, mid }));
    pc.onStateChange((state) => {
      log(`pc ${p} state ${state}`);
      if (state === 'failed') fail(`sender PeerConnection ${p} failed`);
    });

    const dcs: DataChannel[] = [];
    const opens: Promise<void>[] = [];
    for (let c = 0; c < channelsPerPeer; c++) {
      const dc = pc.createDataChannel(laneCount === 1 ? 'bench' : `bench-${p}-${c}`);
      live.dcs.push(dc);
      dcs.push(dc);
      opens.push(new Promise<void>((resolve) => dc.onOpen(() => resolve())));
      dc.onError((err) => fail(`sender channel ${p}/${c} error: ${err}`));
    }

    // 1. offer without candidates, after gathering completes
    await gatheringComplete(pc);
    const offer = pc.localDescription();
    if (!offer) fail(`sender ${p} has no local description after gathering`);
    const answerP = waitFor('answer', p);
    toChild({ t: 'offer', p, sdp: stripCandidates(offer!.sdp) });
    // 2. full answer back
    const answer = await answerP;
    pc.setRemoteDescription(answer.sdp, 'answer');
    // 3. only now our own candidates
    const candidates = localCandidates.length
      ? localCandidates
      : offer!.sdp
          .split(/\r?\n/)
          .filter((l) => l.startsWith('a=candidate:'))
          .map((l) => ({ candidate: l.slice(2), mid: '0' }));
    for (const c of candidates) toChild({ t: 'candidate', p, ...c });
    log(`answer ${p} applied, ${candidates.length} local candidates sent`);
    await Promise.all(opens);
    return dcs;
  };

  const perPeer = await Promise.all(Array.from({ length: peerCount }, (_, p) => connectPeer(p)));
  await connectedP;
  const connectMs = now() - t0;
  // Lane order: peer-major, so with several peers consecutive messages go to different peers.
  const lanes: DataChannel[] = [];
  for (let c = 0; c < channelsPerPeer; c++) for (const dcs of perPeer) lanes.push(dcs[c]!);
  const negotiatedMax = Math.min(...lanes.map((dc) => dc.maxMessageSize()));
  if (chunkBytes > negotiatedMax) {
    fail(`chunk ${chunkBytes} exceeds the negotiated max message size ${negotiatedMax}`);
  }
  log(
    `${lanes.length} channel(s) open after ${connectMs.toFixed(0)} ms ` +
      `(negotiated maxMessageSize ${negotiatedMax})`,
  );

  // Transfer with backpressure, per lane
  const buf = Buffer.alloc(chunkBytes, 0xab);
  const wakes: ((() => void) | undefined)[] = lanes.map(() => undefined);
  lanes.forEach((dc, i) => {
    dc.setBufferedAmountLowThreshold(lowWater);
    dc.onBufferedAmountLow(() => {
      const w = wakes[i];
      wakes[i] = undefined;
      w?.();
    });
  });

  const ticksBase = threadCpuOut ? threadTicks() : undefined;
  const cpuBase = process.cpuUsage();
  const firstSendAt = now();
  let sent = 0;
  let messages = 0;
  while (sent < totalBytes) {
    const lane = messages % lanes.length;
    const dc = lanes[lane]!;
    if (dc.bufferedAmount() > highWater) {
      // Strict round-robin: wait for this lane. A stale low event can wake us early; the loop
      // simply re-checks.
      await new Promise<void>((resolve) => {
        wakes[lane] = resolve;
      });
      continue;
    }
    const n = Math.min(chunkBytes, totalBytes - sent);
    const ok = dc.sendMessageBinary(n === chunkBytes ? buf : buf.subarray(0, n));
    if (!ok) {
      // send() returns false when the message was queued rather than sent immediately; it is
      // still delivered, so only the byte count matters here.
    }
    sent += n;
    messages++;
  }
  const sendLoopDoneAt = now();
  const done = await doneP;
  const senderCpuSec = cpuSecondsSince(cpuBase);
  const senderThreads = threadCount();
  const senderThreadCpu = ticksBase ? threadCpuSince(ticksBase) : undefined;
  clearTimeout(overall);

  if (done.bytes !== totalBytes) fail(`receiver got ${done.bytes} bytes, expected ${totalBytes}`);
  if (done.messages !== messages) fail(`receiver got ${done.messages} messages, sent ${messages}`);
  if (done.nonBuffer.length)
    console.error(`NOTE: onMessage delivered non-Buffer types: ${done.nonBuffer.join(', ')}`);

  // Shut down: tell the receiver to close, close our side, wait for the child to exit.
  finishedCleanly = true;
  toChild({ t: 'finish' });
  const childCode = await Promise.race([
    childExited,
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000).unref()),
  ]);
  closeAll();
  live.dcs = [];
  live.pcs = [];
  if (childCode === 'timeout') fail('receiver did not exit within 10 s of finish');
  if (childCode !== 0) fail(`receiver exited with code ${childCode}`);

  const seconds = (done.lastByteAt - firstSendAt) / 1000;
  const per100MB = 1e8 / totalBytes;
  const result: Result = {
    chunkBytes,
    totalBytes,
    seconds: round(seconds, 4),
    mbPerSec: round(totalBytes / 1e6 / seconds, 1),
    senderCpuSecPer100MB: round(senderCpuSec * per100MB, 3),
    receiverCpuSecPer100MB: round(done.cpuSec * per100MB, 3),
    maxMessageSize,
    mtu: mtu ?? null,
    highWater,
    lowWater,
    sctpRecvBuffer: sctpRecvBuffer ?? null,
    sctpSendBuffer: sctpSendBuffer ?? null,
    messages,
    connectMs: round(connectMs, 1),
    pinned: pin,
    sendLoopSeconds: round((sendLoopDoneAt - firstSendAt) / 1000, 4),
    receiverSpanSeconds: round((done.lastByteAt - done.firstByteAt) / 1000, 4),
    senderCpuSec: round(senderCpuSec, 3),
    receiverCpuSec: round(done.cpuSec, 3),
    channels: channelsPerPeer,
    peers: peerCount,
    senderThreads,
    receiverThreads: done.threads,
    ...(senderThreadCpu ? { senderThreadCpu } : {}),
    ...(done.threadCpu ? { receiverThreadCpu: done.threadCpu } : {}),
  };
  if (jsonOut) {
    console.log(JSON.stringify(result));
  } else {
    const sctp =
      sctpRecvBuffer !== undefined || sctpSendBuffer !== undefined
        ? ` sctp recv/send ${sctpRecvBuffer ?? '-'}/${sctpSendBuffer ?? '-'}`
        : '';
    const striped = laneCount > 1 ? `, ${peerCount} peer(s) x ${channelsPerPeer} channel(s)` : '';
    console.log(
      `bare-datachannel chunk ${chunkBytes} B x ${messages} msgs (${totalBytes} B${striped}, ` +
        `maxMessageSize ${maxMessageSize}, mtu ${mtu ?? 'default'}${sctp}): ${result.mbPerSec} MB/s over ${result.seconds} s; ` +
        `CPU s/100MB sender ${result.senderCpuSecPer100MB}, receiver ${result.receiverCpuSecPer100MB}; ` +
        `connect ${result.connectMs} ms`,
    );
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

if (role === 'receiver') {
  runReceiver().catch((err: unknown) => {
    process.send?.({ t: 'error', message: `receiver: ${String(err)}` } satisfies ToSender);
    process.exit(1);
  });
} else {
  runSender().catch((err: unknown) => {
    console.error(`bare-datachannel: FAILED: ${String(err)}`);
    process.exit(1);
  });
}
