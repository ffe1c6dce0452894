import { PointstreamError } from '../../src/errors.js';
import { POINT_ENCODING_NAMES } from '../../src/wire/index.js';
import type { PointEncodingName } from '../../src/wire/index.js';
import { tokenFromFragment } from '../shared/signaling.js';
import { readPointFile } from '../../src/sources/point-files.js';
import { parseFieldNames, parseFieldPrecision } from '../../src/sources/field-flags.js';
import { describeConversion } from '../../src/sources/point-files.js';
import { FIELD_TYPES, fieldTypeOf } from '../../src/wire/fields.js';
import type { PointCloud } from '../../src/wire/fields.js';
import { runSender } from './run.js';
import type { Progress, RunOptions, RunResult } from './run.js';

/**
 * The browser sender page (/send): a form over {@link runSender}, plus a small hook for tests and
 * scripts: `await window.pointstream.start({ points: 100000, frames: 8 })` resolves with the
 * result, as does `window.pointstream.result` for the last run.
 */

export interface PointstreamHook {
  /** Starts a run with the form's values, overridden by `options`. */
  start(options?: Partial<RunOptions>): Promise<RunResult>;
  stop(): void;
  /** The last run's result, once it is over. */
  result: Promise<RunResult> | undefined;
  /** Settles when the file picked last is parsed: its point count, or the error. */
  file: Promise<number> | undefined;
  /** The fields of the file loaded last, in order, as `name: type` (`{ intensity: 'f32' }`). */
  fileFields: Readonly<Record<string, string>> | undefined;
  readonly ready: true;
}

declare global {
  interface Window {
    pointstream: PointstreamHook;
  }
}

const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`page lacks #${id}`);
  return found as T;
};

const form = element<HTMLFormElement>('form');
const inputs = {
  source: element<HTMLSelectElement>('source'),
  points: element<HTMLInputElement>('points'),
  rate: element<HTMLInputElement>('rate'),
  frames: element<HTMLInputElement>('frames'),
  seed: element<HTMLInputElement>('seed'),
  precision: element<HTMLInputElement>('precision'),
  encoding: element<HTMLSelectElement>('encoding'),
  token: element<HTMLInputElement>('token'),
  dropNonFinite: element<HTMLInputElement>('drop-non-finite'),
  stream: element<HTMLInputElement>('stream'),
  file: element<HTMLInputElement>('file'),
  fields: element<HTMLInputElement>('fields'),
  fieldPrecision: element<HTMLInputElement>('field-precision'),
};
const drop = element<HTMLDivElement>('drop');
const fileStatus = element<HTMLDivElement>('file-status');
const startButton = element<HTMLButtonElement>('start');
const stopButton = element<HTMLButtonElement>('stop');
const status = element<HTMLDivElement>('status');
const progressBar = element<HTMLProgressElement>('progress');
const errorBox = element<HTMLDivElement>('error');
const cells = {
  sent: element('s-sent'),
  acked: element('s-acked'),
  rejected: element('s-rejected'),
  lost: element('s-lost'),
  session: element('s-session'),
  rate: element('s-rate'),
  mbps: element('s-mbps'),
  latency: element('s-latency'),
  encoding: element('s-encoding'),
};

const fragmentToken = tokenFromFragment();
if (fragmentToken !== undefined) inputs.token.value = fragmentToken;

let fileCloud: PointCloud | undefined;
let lastFile: File | undefined;
let controller: AbortController | undefined;

function describeError(error: unknown): string {
  if (error instanceof PointstreamError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? error.message : String(error);
}

async function loadFile(file: File): Promise<number> {
  fileStatus.textContent = `reading ${file.name}…`;
  fileStatus.className = 'hint';
  fileCloud = undefined;
  window.pointstream.fileFields = undefined;
  try {
    const names = inputs.fields.value.trim();
    const { points, fields, conversion } = readPointFile(
      file.name,
      new Uint8Array(await file.arrayBuffer()),
      // The column names matter only for an (N, K) .npy (as send --fields).
      names !== '' && /\.(npy|xyz|txt|csv)$/i.test(file.name)
        ? { fieldNames: parseFieldNames(names) }
        : {},
    );
    fileCloud = { points, fields };
    const count = points.length / 3;
    const types: Record<string, string> = {};
    for (const [name, values] of Object.entries(fields)) types[name] = fieldTypeOf(values) ?? '?';
    const listed = Object.entries(types)
      .map(
        ([name, type]) =>
          `${name} (${FIELD_TYPES[type as keyof typeof FIELD_TYPES]?.numpy ?? type})`,
      )
      .join(', ');
    const note = describeConversion(conversion);
    fileStatus.textContent = `${file.name}: ${count.toLocaleString('en')} points (${(points.byteLength / 1e6).toFixed(1)} MB as float32)${listed === '' ? ', no fields' : `; fields: ${listed}`}${note === undefined ? '' : `; ${note}`}`;
    fileStatus.className = 'ok';
    fileStatus.dataset.points = String(count);
    fileStatus.dataset.fields = Object.keys(types).join(',');
    window.pointstream.fileFields = types;
    inputs.source.value = 'file';
    return count;
  } catch (error) {
    fileStatus.textContent = `${file.name}: ${describeError(error)}`;
    fileStatus.className = 'bad';
    delete fileStatus.dataset.points;
    delete fileStatus.dataset.fields;
    throw error;
  }
}

function pickFile(file: File | undefined): void {
  if (file === undefined) return;
  lastFile = file;
  const loading = loadFile(file);
  loading.catch(() => undefined); // shown on the page
  window.pointstream.file = loading;
}

// One name per page: every run of this page feeds the same stream (a viewer keeps watching it).
inputs.stream.value ||= `browser-${Math.random().toString(36).slice(2, 8)}`;

inputs.file.addEventListener('change', () => pickFile(inputs.file.files?.[0]));
// New column names: the file is read again with them.
inputs.fields.addEventListener('change', () => pickFile(lastFile));
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  pickFile(event.dataTransfer?.files[0]);
});

function formOptions(): RunOptions {
  const number = (input: HTMLInputElement, fallback: number): number => {
    const value = Number(input.value);
    return Number.isFinite(value) && value >= 0 ? value : fallback;
  };
  const token = inputs.token.value.trim();
  const stream = inputs.stream.value.trim();
  return {
    offerUrl: new URL('/offer', location.origin).toString(),
    token: token.length > 0 ? token : undefined,
    stream: stream.length > 0 ? stream : undefined,
    source:
      inputs.source.value === 'file'
        ? 'file'
        : inputs.source.value === 'lidar'
          ? 'lidar'
          : 'random',
    points: Math.max(1, Math.floor(number(inputs.points, 100_000))),
    seed: Math.floor(number(inputs.seed, 1)),
    rate: number(inputs.rate, 4),
    frames: Math.floor(number(inputs.frames, 40)),
    encoding: POINT_ENCODING_NAMES.includes(inputs.encoding.value as PointEncodingName)
      ? (inputs.encoding.value as PointEncodingName)
      : 'raw',
    precision: number(inputs.precision, 1) / 1000 || undefined,
    dropNonFinite: inputs.dropNonFinite.checked,
    fieldPrecision:
      inputs.fieldPrecision.value.trim() === ''
        ? undefined
        : parseFieldPrecision(inputs.fieldPrecision.value),
  };
}

let pendingPaint: Progress | undefined;
function show(progress: Progress): void {
  // At most one repaint per animation frame, however many receipts arrive.
  if (pendingPaint === undefined) requestAnimationFrame(paint);
  pendingPaint = progress;
}
function paint(): void {
  const p = pendingPaint;
  pendingPaint = undefined;
  if (p === undefined) return;
  cells.sent.textContent = String(p.framesSent);
  cells.acked.textContent = String(p.framesAcked);
  cells.rejected.textContent = String(p.framesRejected);
  cells.lost.textContent = String(p.framesLost);
  cells.rejected.className = p.framesRejected > 0 ? 'bad' : '';
  cells.lost.className = p.framesLost > 0 ? 'bad' : '';
  cells.session.textContent = p.sessionId ?? '–';
  cells.rate.textContent = `${p.achievedHz.toFixed(2)} frames/s`;
  cells.mbps.textContent = `${p.mbPerSec.toFixed(1)} MB/s`;
  cells.latency.textContent = `${p.latencyMs.p50} / ${p.latencyMs.p99} / ${p.latencyMs.max} ms`;
  if (p.framesPlanned !== null) {
    progressBar.max = p.framesPlanned;
    progressBar.value = p.framesAcked + p.framesRejected + p.framesLost;
  } else progressBar.removeAttribute('value');
  if (p.phase !== 'done')
    status.textContent = `${p.phase}… ${p.framesSent}${p.framesPlanned === null ? '' : ` of ${p.framesPlanned}`} frames sent, ${p.seconds.toFixed(1)} s`;
}

async function start(overrides: Partial<RunOptions> = {}): Promise<RunResult> {
  if (controller !== undefined) throw new Error('a run is already going on: stop it first');
  const options = { ...formOptions(), ...overrides };
  controller = new AbortController();
  startButton.disabled = true;
  stopButton.disabled = false;
  errorBox.textContent = '';
  status.className = 'hint';
  cells.encoding.textContent = `${options.encoding}…`;
  document.body.dataset.state = 'running';
  let file = fileCloud;
  if (options.source === 'file' && window.pointstream.file !== undefined) {
    await window.pointstream.file.catch(() => undefined);
    file = fileCloud;
  }
  const run = runSender(options, file, controller.signal, show);
  window.pointstream.result = run;
  const result = await run;
  controller = undefined;
  startButton.disabled = false;
  stopButton.disabled = true;
  status.textContent = result.ok ? `OK: ${result.reason}` : `FAILED: ${result.reason}`;
  status.className = result.ok ? 'ok' : 'bad';
  if (!result.ok) errorBox.textContent = `${result.errorCode ?? 'error'}: ${result.reason}`;
  cells.encoding.textContent =
    result.encoding === 'raw'
      ? `raw: ${result.bytesPerPoint} B/point, lossless`
      : `${result.encoding}: ${result.bytesPerPoint} B/point, max error ${(result.maxError * 1000).toFixed(3)} mm, encoded in ${result.encodeMsP50} ms (median, worker)`;
  document.body.dataset.state = result.ok ? 'done' : 'failed';
  return result;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  start().catch((error: unknown) => (errorBox.textContent = describeError(error)));
});
stopButton.addEventListener('click', () => controller?.abort());

window.pointstream = {
  start,
  stop: () => controller?.abort(),
  result: undefined,
  file: undefined,
  fileFields: undefined,
  ready: true,
};
document.body.dataset.state = 'ready';
