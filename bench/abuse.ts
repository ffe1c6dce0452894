/**
 * `npm run bench:abuse`: the hostile clients of issue 14, all at once, for 60 s, while a
 * legitimate `send` streams the seed workload (1M points x 4 Hz) to the same `serve`. Everything
 * on 127.0.0.0/8: the legitimate client comes from 127.0.0.1, each attack from its own /24
 * (127.0.N.x), as separate machines would, so per-address and per-network limits apply to them
 * and not to it. Bounded in time and count; every process and connection is closed at the end.
 *
 *   npm run bench:abuse -- [--seconds 60]
 *
 * Prints a JSON summary and writes bench/results/<date>-abuse.md. Exit 1 when the legitimate
 * client did not get every frame through.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import type { Socket } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { crc32 } from 'node:zlib';
import nodeDataChannel from 'node-datachannel';
import type { DataChannel, PeerConnection } from 'node-datachannel';
import { withoutCandidates } from '../src/signaling/sdp.js';
import { PROTOCOL_V1 } from '../src/wire/chunk.js';
import { encodePoints } from '../src/wire/encodings/index.js';
import { prepareEncodedFrame, writeChunk } from '../src/wire/frame.js';
import { ROOT } from './lib/proc.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string' }, attacks: { type: 'string' } },
});
/** `--attacks decode,budget,...`: a subset (default all). */
const chosen = new Set(
  (values.attacks ?? 'decode,budget,plain,half,slowloris,dns,viewer').split(','),
);
const SECONDS = Number(values.seconds ?? 60);
if (!Number.isInteger(SECONDS) || SECONDS < 10) throw new Error('--seconds: an integer >= 10');
const CLI = join(ROOT, 'dist/cli/main.js');
const deadline = performance.now() + SECONDS * 1000;
const running = (): boolean => performance.now() < deadline;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const counts: Record<string, number> = {};
const count = (what: string, n = 1): void => {
  counts[what] = (counts[what] ?? 0) + n;
};

// ---------------------------------------------------------------------------------------------
// The server and the legitimate client, as the README shows them

const serve = spawn(process.execPath, [CLI, 'serve', '--host', '127.0.0.1', '--port', '0'], {
  stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  env: { ...process.env, POINTSTREAM_LOG_FORMAT: 'json' },
});
let logBytes = 0;
serve.stdout?.on('data', (d: Buffer) => (logBytes += d.length));
serve.stderr?.on('data', (d: Buffer) => (logBytes += d.length));
const url = await new Promise<string>((resolve, reject) => {
  serve.once('message', (m: { url: string }) => resolve(m.url));
  serve.once('exit', (code) => reject(new Error(`serve exited with ${code}`)));
});
const { port } = new URL(url);

function procStatus(pid: number): { rssKb: number; hwmKb: number; threads: number } {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(text)?.[1]);
  return { rssKb: field('VmRSS'), hwmKb: field('VmHWM'), threads: field('Threads') };
}
const baseline = procStatus(serve.pid as number);

const legit = spawn(
  process.execPath,
  [CLI, 'send', '--signaling', url, '--rate', '4', '--duration', String(SECONDS), '--json'],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
let legitOut = '';
legit.stdout.on('data', (d: Buffer) => (legitOut += d.toString()));
const legitDone = new Promise<void>((resolve) => legit.once('exit', () => resolve()));

// ---------------------------------------------------------------------------------------------
// Helpers: HTTP from a given source address, bare WebRTC peers bound to it

interface HttpReply {
  status: number;
  location: string | undefined;
  body: string;
}

function http(
  from: string,
  method: string,
  path: string,
  body?: string,
  contentType = 'application/json',
): Promise<HttpReply> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method,
        localAddress: from,
        headers: body === undefined ? {} : { 'content-type': contentType },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: text }),
        );
        res.on('error', () => resolve({ status: 0, location: undefined, body: '' }));
      },
    );
    req.on('error', () => resolve({ status: 0, location: undefined, body: '' }));
    req.on('timeout', () => req.destroy());
    req.end(body);
  });
}

const peers = new Set<PeerConnection>();
/**
 * Every peer and channel made, kept until the end: node-datachannel closes a channel whose
 * JavaScript object is collected, and that racing a close from here crashed this process
 * (SIGSEGV/SIGBUS) now and then.
 */
const retained: unknown[] = [];

/** A node-datachannel peer bound to `from`, its offer (without candidates) ready. */
async function peer(
  from: string,
  channels: { label: string; protocol: string }[],
): Promise<{ pc: PeerConnection; dcs: DataChannel[]; offer: string }> {
  const pc = new nodeDataChannel.PeerConnection('abuse', {
    iceServers: [],
    bindAddress: from,
    maxMessageSize: 256 * 1024,
  });
  pc.onStateChange(() => undefined);
  peers.add(pc);
  retained.push(pc);
  const dcs = channels.map(({ label, protocol }) => {
    const dc = pc.createDataChannel(label, { protocol });
    dc.onClosed(() => undefined);
    retained.push(dc);
    return dc;
  });
  await new Promise<void>((resolve) => {
    if (pc.gatheringState() === 'complete') resolve();
    else pc.onGatheringStateChange((s) => s === 'complete' && resolve());
    setTimeout(resolve, 3000);
  });
  return { pc, dcs, offer: withoutCandidates(pc.localDescription()?.sdp ?? '') };
}

function closePeer(pc: PeerConnection): void {
  peers.delete(pc);
  try {
    pc.close();
  } catch {
    // already closed
  }
}

/** Signals `offer`, applies the answer and trickles the candidates; resolves when connected. */
async function connectPeer(
  from: string,
  p: Awaited<ReturnType<typeof peer>>,
  stream: string,
): Promise<boolean> {
  const reply = await http(from, 'POST', `/offer?stream=${stream}`, p.offer, 'application/sdp');
  count(`${stream}: offer ${reply.status}`);
  if (reply.status !== 201 && reply.status !== 200) return false;
  p.pc.setRemoteDescription(reply.body, 'answer');
  const local = p.pc.localDescription()?.sdp ?? '';
  const candidates = local
    .split('\r\n')
    .filter((l) => l.startsWith('a=candidate'))
    .join('\r\n');
  if (reply.location !== undefined && candidates !== '')
    await http(
      from,
      'PATCH',
      reply.location,
      `${candidates}\r\n`,
      'application/trickle-ice-sdpfrag',
    );
  const open = await Promise.race([
    new Promise<boolean>((resolve) => p.dcs[0]?.onOpen(() => resolve(true))),
    sleep(5000).then(() => false),
  ]);
  return open;
}

// ---------------------------------------------------------------------------------------------
// The attacks (issue 14's numbering)

/** 1. Frames of 5M identical points, qrice: 2 MB on the wire, ~170 ms to decode each. */
async function decodeFlood(from: string): Promise<void> {
  const points = new Float32Array(5_000_000 * 3).fill(1.5);
  const encoded = encodePoints(points, 'qrice', { precision: 0.001 });
  const scratch = new Uint8Array(256 * 1024);
  while (running()) {
    const p = await peer(from, [{ label: 'pointstream', protocol: PROTOCOL_V1 }]);
    if (await connectPeer(from, p, 'attack-decode')) {
      const dc = p.dcs[0] as DataChannel;
      for (let seq = 0; running() && dc.isOpen(); seq++) {
        const frame = prepareEncodedFrame(encoded, seq, Date.now(), scratch.length, crc32);
        for (let i = 0; i < frame.chunkCount && dc.isOpen(); i++) {
          while (dc.isOpen() && dc.bufferedAmount() > 4 * 1024 * 1024) await sleep(5);
          try {
            dc.sendMessageBinary(writeChunk(frame, i, scratch));
          } catch {
            break;
          }
        }
        count('decode: frames sent');
        await sleep(150); // ~13 MB/s, the rate
      }
    }
    closePeer(p.pc);
    await sleep(500);
  }
}

/** 2. START chunks only, declaring 5M points, on many channels (and 64 KiB labels: item 6). */
async function budgetHolder(from: string): Promise<void> {
  const encoded = encodePoints(new Float32Array(5_000_000 * 3).fill(2.5), 'qrice');
  const scratch = new Uint8Array(256 * 1024);
  const label = 'x'.repeat(65_000);
  while (running()) {
    const p = await peer(
      from,
      Array.from({ length: 10 }, () => ({ label, protocol: PROTOCOL_V1 })),
    );
    if (await connectPeer(from, p, 'attack-budget')) {
      await sleep(500);
      for (const [k, dc] of p.dcs.entries()) {
        for (let seq = 0; seq < 2; seq++) {
          try {
            const frame = prepareEncodedFrame(encoded, k * 2 + seq, Date.now(), 256 * 1024, crc32);
            dc.sendMessageBinary(writeChunk(frame, 0, scratch));
            count('budget: START chunks sent');
          } catch {
            count('budget: channel refused');
          }
        }
      }
      // Text keeps no session alive any more; send some anyway, as the attack did.
      while (running() && p.dcs.some((dc) => dc.isOpen())) {
        for (const dc of p.dcs)
          if (dc.isOpen()) {
            try {
              dc.sendMessage('{"type":"keepalive"}');
            } catch {
              // closed under us
            }
          }
        await sleep(1000);
      }
    }
    closePeer(p.pc);
    await sleep(500);
  }
}

/** 4. The plain form at line rate: 256 KiB messages of garbage. */
async function plainFlood(from: string): Promise<void> {
  const junk = Buffer.alloc(256 * 1024, 7);
  while (running()) {
    const p = await peer(from, [{ label: 'plain', protocol: '' }]);
    if (await connectPeer(from, p, 'attack-plain')) {
      const dc = p.dcs[0] as DataChannel;
      while (running() && dc.isOpen()) {
        while (dc.isOpen() && dc.bufferedAmount() > 4 * 1024 * 1024) await sleep(5);
        try {
          dc.sendMessageBinary(junk);
          count('plain: messages sent');
        } catch {
          break;
        }
        if ((counts['plain: messages sent'] ?? 0) % 16 === 0) await sleep(1);
      }
    }
    closePeer(p.pc);
    await sleep(500);
  }
}

/** 8. Ten addresses of one network, one offer every 1.9 s each, never connecting. */
async function halfOpen(network: number): Promise<void> {
  const p = await peer(`127.0.${network}.1`, [{ label: 'x', protocol: PROTOCOL_V1 }]);
  const offer = p.offer;
  closePeer(p.pc);
  await Promise.all(
    Array.from({ length: 10 }, async (_, i) => {
      while (running()) {
        const reply = await http(
          `127.0.${network}.${i + 1}`,
          'POST',
          '/offer?stream=attack-half',
          offer,
          'application/sdp',
        );
        count(`half-open: offer ${reply.status}`);
        await sleep(1900);
      }
    }),
  );
}

/** 5. Sockets that never finish their request (slowloris), re-opened as they are closed. */
async function slowloris(from: string, sockets: number): Promise<void> {
  const open = new Set<Socket>();
  while (running()) {
    while (open.size < sockets && running()) {
      const socket = createConnection({
        host: '127.0.0.1',
        port: Number(port),
        localAddress: from,
      });
      socket.on('error', () => undefined);
      socket.on('close', () => {
        open.delete(socket);
        count('slowloris: sockets closed by the server');
      });
      socket.write(`POST /offer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"sdp":"`);
      open.add(socket);
      count('slowloris: sockets opened');
    }
    await sleep(200);
  }
  for (const socket of open) socket.destroy();
}

/** A static offer to post again and again (never connected, as the attacks did). */
async function staticOffer(from: string, protocol: string): Promise<string> {
  const p = await peer(from, [{ label: 'x', protocol }]);
  const offer = p.offer;
  closePeer(p.pc);
  return offer;
}

/** 7. Trickled candidates that name hosts (each a blocking DNS lookup thread, before). */
async function hostCandidates(from: string): Promise<void> {
  const offer = await staticOffer(from, PROTOCOL_V1);
  while (running()) {
    const reply = await http(from, 'POST', '/offer?stream=attack-dns', offer, 'application/sdp');
    count(`dns: offer ${reply.status}`);
    if (reply.location !== undefined) {
      for (let i = 0; i < 50 && running(); i++) {
        const lines = Array.from(
          { length: 20 },
          (_, k) =>
            `a=candidate:${i}${k} 1 UDP 2122252543 host-${i}-${k}.invalid ${40000 + k} typ host`,
        ).join('\r\n');
        const patched = await http(
          from,
          'PATCH',
          reply.location,
          `${lines}\r\n`,
          'application/trickle-ice-sdpfrag',
        );
        count(`dns: PATCH ${patched.status}`);
      }
    }
    await sleep(1000);
  }
}

/** 11. Viewer offers for the attack streams, never connected. */
async function viewerHoarder(from: string): Promise<void> {
  const offer = await staticOffer(from, '');
  while (running()) {
    const reply = await http(
      from,
      'POST',
      '/viewer/offer',
      JSON.stringify({ sdp: offer, type: 'offer', stream: 'attack-budget' }),
    );
    count(`viewer: offer ${reply.status}`);
    await sleep(500);
  }
}

// ---------------------------------------------------------------------------------------------
// Watching: /healthz latency from its own network, server memory and threads

const healthMs: number[] = [];
let healthFailures = 0;
const peak = { rssKb: 0, threads: 0 };
async function watch(): Promise<void> {
  while (running()) {
    const started = performance.now();
    const reply = await http('127.0.9.1', 'GET', '/healthz');
    if (reply.status === 200) healthMs.push(performance.now() - started);
    else healthFailures++;
    const s = procStatus(serve.pid as number);
    peak.rssKb = Math.max(peak.rssKb, s.rssKb);
    peak.threads = Math.max(peak.threads, s.threads);
    await sleep(100);
  }
}

const attacks = [
  chosen.has('decode') && decodeFlood('127.0.1.1'),
  chosen.has('budget') && budgetHolder('127.0.2.1'),
  chosen.has('plain') && plainFlood('127.0.3.1'),
  chosen.has('half') && halfOpen(4),
  chosen.has('slowloris') && slowloris('127.0.5.1', 200),
  chosen.has('dns') && hostCandidates('127.0.6.1'),
  chosen.has('viewer') && viewerHoarder('127.0.7.1'),
  watch(),
].filter((attack): attack is Promise<void> => attack !== false);
await Promise.allSettled(attacks);
await legitDone;
for (const pc of [...peers]) closePeer(pc);
const end = procStatus(serve.pid as number);
serve.kill('SIGTERM');
const serveExit = await new Promise<number | null>((resolve) => serve.once('exit', resolve));
nodeDataChannel.cleanup();

const summary = JSON.parse(legitOut.trim().split('\n').pop() ?? '{}') as {
  ok?: boolean;
  framesAcked?: number;
  framesPlanned?: number;
  latencyMs?: { p50: number; p99: number; max: number };
  reason?: string;
};
healthMs.sort((a, b) => a - b);
const pct = (q: number): number =>
  healthMs.length === 0
    ? 0
    : Number(
        (healthMs[Math.min(healthMs.length - 1, Math.floor(q * healthMs.length))] ?? 0).toFixed(1),
      );
const result = {
  seconds: SECONDS,
  legit: {
    ok: summary.ok === true,
    framesAcked: summary.framesAcked,
    framesPlanned: summary.framesPlanned,
    latencyMs: summary.latencyMs,
    reason: summary.reason,
  },
  healthz: {
    answers: healthMs.length,
    failures: healthFailures,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    maxMs: pct(1),
  },
  server: {
    baselineRssMb: Math.round(baseline.rssKb / 1024),
    peakRssMb: Math.round(Math.max(peak.rssKb, end.hwmKb) / 1024),
    endRssMb: Math.round(end.rssKb / 1024),
    baselineThreads: baseline.threads,
    peakThreads: peak.threads,
    logMb: Number((logBytes / 1e6).toFixed(2)),
    exitCode: serveExit,
  },
  attacks: counts,
};
console.log(JSON.stringify(result));

const date = new Date().toISOString().slice(0, 10);
const dir = join(ROOT, 'bench/results');
mkdirSync(dir, { recursive: true });
const file = join(dir, `${date}-abuse.md`);
writeFileSync(
  file,
  [
    `# Abuse resistance, ${new Date().toISOString()}`,
    '',
    `\`npm run bench:abuse -- --seconds ${SECONDS}\`: \`pointstream serve --host 127.0.0.1 --port 0\`; the seed workload`,
    `(\`send --signaling <url> --rate 4 --duration ${SECONDS}\`) from 127.0.0.1 while seven attacks run`,
    'from their own networks (bench/abuse.ts): qrice frames of 5M identical points, START chunks on',
    '10 channels with 65,000-byte labels plus text keep-alives, 256 KiB plain-form garbage at line rate,',
    'half-open offers from 10 addresses every 1.9 s, 200 slowloris sockets, PATCHes of host-name',
    'candidates, viewer offers.',
    '',
    '```json',
    JSON.stringify(result, null, 2),
    '```',
    '',
  ].join('\n'),
);
console.error(`report: ${file}`);
process.exit(result.legit.ok && result.legit.framesAcked === result.legit.framesPlanned ? 0 : 1);
