/**
 * Child processes for the benchmark: every child gets a deadline and is killed (SIGKILL) when it
 * passes it, or when this process exits.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The project root (bench/lib/../..); children run from here. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});
// Ctrl-C or a kill of the benchmark: take the children down too ('exit' above does the killing).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => process.exit(130));
}

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Keeps the last `max` characters written to it. */
class Tail {
  #text = '';
  constructor(private readonly max = 4000) {}
  push(chunk: Buffer | string): void {
    this.#text = (this.#text + String(chunk)).slice(-this.max);
  }
  get text(): string {
    return this.#text;
  }
}

/** Starts `command ...args` from the project root; stdout/stderr are piped. */
function spawnChild(command: string, args: readonly string[], ipc: boolean): ChildProcess {
  const child = spawn(command, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? (['ipc'] as const) : [])],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Runs `node ...args` to completion; rejects if it cannot start or runs past `timeoutMs`. */
export function runNode(
  label: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<ChildResult> {
  return runCommand(label, process.execPath, args, timeoutMs);
}

/** Runs `command ...args` to completion; rejects if it cannot start or runs past `timeoutMs`. */
export function runCommand(
  label: string,
  command: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawnChild(command, args, false);
    let stdout = '';
    const stderr = new Tail();
    child.stdout?.on('data', (chunk: Buffer) => (stdout += String(chunk)));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(failure(`${label}: killed after the ${timeoutMs} ms timeout`, stderr.text));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`${label}: could not start: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr: stderr.text });
    });
  });
}

/** The last non-empty line of `stdout`, parsed as JSON (the CLI and the ceiling print it last). */
export function lastJsonLine(label: string, result: ChildResult): unknown {
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as unknown;
  } catch {
    throw failure(`${label}: ${describeExit(result)}, no JSON summary`, result.stderr);
  }
}

/** An error whose message is `message`, then the child's output (trimmed) if it has any. */
export function failure(message: string, output: string): Error {
  const text = output.trim();
  return new Error(text ? `${message}\n${text}` : message);
}

export function describeExit(result: Pick<ChildResult, 'code' | 'signal'>): string {
  return result.signal ? `killed by ${result.signal}` : `exit code ${result.code}`;
}

/** A long-running child: its PID, signals, and its exit. */
export interface Process {
  /** Undefined if it could not be started (then `exited` resolves at once with the error). */
  readonly pid: number | undefined;
  /** Resolves with the exit; `stdout` holds what it printed (all of it, or the tail: see below). */
  readonly exited: Promise<ChildResult>;
  /** Sends `signal` if it is still running. */
  kill(signal: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit. */
  stop(graceMs: number): Promise<ChildResult>;
}

export interface ProcessOptions {
  /** Every complete stdout line, as it comes. */
  readonly onLine?: ((line: string) => void) | undefined;
  /** Every complete stderr line, as it comes. */
  readonly onErrorLine?: ((line: string) => void) | undefined;
  /** Keep all of stdout for `exited` (a `--json` summary comes last); default: the last 4000 characters. */
  readonly keepStdout?: boolean;
  /** An IPC channel (readiness messages). */
  readonly ipc?: boolean;
}

/** Calls `onLine` with each complete line of `stream`. */
function eachLine(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  let partial = '';
  stream?.on('data', (chunk: Buffer) => {
    const lines = (partial + String(chunk)).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
}

/**
 * Starts `node ...args`; it is killed (SIGKILL) once `timeoutMs` has passed, whatever it is doing.
 * `ChildProcess` stays inside: callers get its PID, signals and exit.
 */
export function startProcess(
  label: string,
  args: readonly string[],
  timeoutMs: number,
  options: ProcessOptions = {},
): Process & { readonly child: ChildProcess } {
  const child = spawnChild(process.execPath, args, options.ipc === true);
  const stderr = new Tail();
  const tail = new Tail();
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    if (options.keepStdout) stdout += String(chunk);
    else tail.push(chunk);
  });
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  if (options.onLine) eachLine(child.stdout, options.onLine);
  if (options.onErrorLine) eachLine(child.stderr, options.onErrorLine);
  const deadline = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exited = new Promise<ChildResult>((resolve) => {
    child.once('error', (error) => {
      clearTimeout(deadline);
      resolve({
        code: null,
        signal: null,
        stdout: '',
        stderr: `${label}: could not start: ${error.message}`,
      });
    });
    child.once('close', (code, signal) => {
      clearTimeout(deadline);
      resolve({
        code,
        signal,
        stdout: options.keepStdout ? stdout : tail.text,
        stderr: stderr.text,
      });
    });
  });
  const kill = (signal: NodeJS.Signals): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  const stop = async (graceMs: number): Promise<ChildResult> => {
    kill('SIGTERM');
    const grace = setTimeout(() => kill('SIGKILL'), graceMs);
    const result = await exited;
    clearTimeout(grace);
    return result;
  };
  return { child, pid: child.pid, exited, kill, stop };
}

/** A long-running child (a server) that reports readiness over IPC. */
export interface Daemon extends Process {
  /** Resolves with the first IPC message accepted by `ready`. */
  readonly ready: Promise<unknown>;
}

/**
 * Starts `node ...args` with an IPC channel. It is killed once `timeoutMs` has passed, whatever
 * it is doing; `ready` rejects if it exits first. `onLine` sees every complete stdout line.
 */
export function startDaemon(
  label: string,
  args: readonly string[],
  timeoutMs: number,
  isReady: (message: unknown) => boolean,
  onLine?: (line: string) => void,
): Daemon {
  const started = startProcess(label, args, timeoutMs, { onLine, ipc: true });
  const { child } = started;
  // The output's tail, stdout and stderr together, for the messages below.
  const output = new Tail();
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk));
  const withOutput = (r: ChildResult): ChildResult => ({
    ...r,
    stdout: '',
    stderr: output.text || r.stderr,
  });
  const exited = started.exited.then(withOutput);
  const ready = new Promise<unknown>((resolve, reject) => {
    child.on('message', (message) => {
      if (isReady(message)) resolve(message);
    });
    void exited.then((r) =>
      reject(failure(`${label}: ${describeExit(r)} before it was ready`, r.stderr)),
    );
  });
  // Nobody may be waiting for readiness when a daemon dies later: that is not an unhandled error.
  ready.catch(() => undefined);
  return {
    pid: started.pid,
    kill: (signal) => started.kill(signal),
    exited,
    ready,
    stop: async (graceMs) => withOutput(await started.stop(graceMs)),
  };
}
