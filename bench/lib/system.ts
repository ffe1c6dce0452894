/** Machine-wide counters read around each run, to see what else happened meanwhile. */
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';

export interface SystemCounters {
  /** CPU time of all cores spent outside idle, in seconds (steal included). */
  readonly busySec: number;
  /** Of it, time the hypervisor gave to others ("steal", /proc/stat); 0 where unknown. */
  readonly stealSec: number;
  /** UDP datagrams dropped because a receive buffer was full; undefined if unreadable. */
  readonly udpDrops: number | undefined;
}

export function readCounters(): SystemCounters {
  return {
    busySec: busyCpuSeconds(),
    stealSec: stealSeconds(),
    udpDrops: udpReceiveBufferErrors(),
  };
}

/**
 * From /proc/stat (Linux; USER_HZ 100), which unlike `os.cpus()` includes softirq time, where the
 * kernel does much of the loopback UDP work. Elsewhere `os.cpus()`.
 */
function busyCpuSeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const ticks = line.split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...: all but idle and iowait
    const busy = [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + (ticks[i] ?? 0), 0);
    if (line.startsWith('cpu ') && Number.isFinite(busy)) return busy / 100;
  } catch {
    // not Linux
  }
  let busyMs = 0;
  for (const { times } of os.cpus()) busyMs += times.user + times.nice + times.sys + times.irq;
  return busyMs / 1000;
}

/** The steal column of /proc/stat's first line, in seconds (USER_HZ 100); 0 elsewhere. */
function stealSeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const steal = Number(line.split(/\s+/)[8]);
    if (line.startsWith('cpu ') && Number.isFinite(steal)) return steal / 100;
  } catch {
    // not Linux
  }
  return 0;
}

/** What happened between two readings. */
export function countersSince(before: SystemCounters): SystemCounters {
  const after = readCounters();
  const drops =
    before.udpDrops === undefined || after.udpDrops === undefined
      ? undefined
      : after.udpDrops - before.udpDrops;
  return {
    busySec: after.busySec - before.busySec,
    stealSec: after.stealSec - before.stealSec,
    udpDrops: drops,
  };
}

/**
 * `Udp: RcvbufErrors` of /proc/net/snmp (Linux). Each dropped datagram costs SCTP a
 * retransmission and a smaller congestion window.
 */
function udpReceiveBufferErrors(): number | undefined {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('Udp: '));
    const names = lines[0]?.split(/\s+/) ?? [];
    const values = lines[1]?.split(/\s+/) ?? [];
    const value = Number(values[names.indexOf('RcvbufErrors')]);
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Waits until the machine has been nearly idle (below `maxBusyCores` of CPU, all cores together)
 * for `quietMs`, or until `maxWaitMs` has passed. Resolves true if it got quiet.
 */
export async function waitForQuiet(
  maxWaitMs: number,
  quietMs = 2000,
  maxBusyCores = 0.3,
): Promise<boolean> {
  const stepMs = 500;
  const deadline = performance.now() + maxWaitMs;
  let quietSince = performance.now();
  let last = readCounters().busySec;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, stepMs));
    const busy = readCounters().busySec;
    if (busy - last > (maxBusyCores * stepMs) / 1000) quietSince = performance.now();
    last = busy;
    if (performance.now() - quietSince >= quietMs) return true;
    if (performance.now() >= deadline) return false;
  }
}

/**
 * CPU time (user + system, seconds) a live process has used so far, from /proc/<pid>/stat (Linux;
 * USER_HZ 100); undefined when it cannot be read (the process is gone, or not Linux). Threads
 * included (libdatachannel's, nats-server's goroutines); children not.
 */
export function processCpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces, in parentheses): state is field 3,
    // utime 14 and stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return Number.isFinite(ticks) ? ticks / 100 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU time (seconds) of each of the kernel's own threads (kthreadd and its children: writeback
 * workers, the journal, ksoftirqd...) by PID, from /proc (Linux); empty elsewhere. With tick-based
 * accounting, softirq work is charged to whichever task was running, these threads included.
 */
export function kernelThreadsCpu(): Map<string, number> {
  const cpu = new Map<string, number>();
  let names: string[];
  try {
    names = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return cpu;
  }
  for (const pid of names) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields[1] is the parent's PID (field 4); kthreadd is PID 2.
      if (pid !== '2' && fields[1] !== '2') continue;
      const ticks = Number(fields[11]) + Number(fields[12]);
      if (Number.isFinite(ticks)) cpu.set(pid, ticks / 100);
    } catch {
      // exited meanwhile
    }
  }
  return cpu;
}

/**
 * Kernel threads' CPU seconds since `before` ({@link kernelThreadsCpu}): each thread's growth, a
 * thread started since counted whole. Workers come and go: one that exited meanwhile is missed.
 */
export function kernelThreadsCpuSince(before: ReadonlyMap<string, number>): number {
  let seconds = 0;
  for (const [pid, now] of kernelThreadsCpu()) seconds += Math.max(0, now - (before.get(pid) ?? 0));
  return seconds;
}
