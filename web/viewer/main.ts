/**
 * The live viewer page: the server's streams from `GET /stats` (refreshed every second), and the
 * point cloud of the one being watched, over its own WebRTC connection (`POST /viewer/offer`).
 * A stream outlives its sessions: the server keeps sending the frames of whichever session feeds
 * it, so a sender that reconnects stays on screen. `/#stream=NAME` opens a stream as soon as it
 * is live; `&colour=FIELD` colours it by that field.
 *
 * Scripts and tests drive it through `window.pointstreamViewer`:
 * `await pointstreamViewer.watch(stream)`, then `framesShown`, `lastPointCount`, `dropped`;
 * `colourBy('intensity')`, then `lastColour` once a frame coloured by it is drawn.
 */
import { authHeaders, openViewer } from './connect.js';
import type { ViewerConnection } from './connect.js';
import { ErrorCodes, PointstreamError } from '../../src/errors.js';
import {
  ViewerReassembler,
  decodeViewerControl,
  encodeViewerAck,
  encodeViewerColour,
} from '../../src/wire/viewer.js';
import type { ViewerFrame } from '../../src/wire/viewer.js';
import { HEIGHT } from '../../src/wire/viewer-colour.js';
import { ColourPicker } from './colour.js';
import { PointScene } from './scene.js';

/** 'ended': the stream ended normally (its client closed, or the server shut down). */
type WatchState = 'idle' | 'connecting' | 'watching' | 'closed' | 'ended' | 'error';

interface ViewerHook {
  watch(stream: string): Promise<void>;
  /** The stream watched, if any. */
  readonly stream: string | undefined;
  stop(): void;
  readonly state: WatchState;
  readonly error: string;
  readonly framesShown: number;
  readonly lastPointCount: number;
  readonly dropped: number;
  /** Milliseconds from the last frame's first message to its last. */
  readonly lastTransferMs: number;
  /** Milliseconds from the last frame's last message to the end of its draw call. */
  readonly lastDrawMs: number;
  /** Asks the server to colour by `colour` (`height`, `rgb` or a field of the stream). */
  colourBy(colour: string): void;
  /** The colour chosen. */
  readonly colour: string;
  /** What the last frame drawn was coloured by (`height` when it carried no channel). */
  readonly lastColour: string;
  /** The colours the stream offers (height first). */
  readonly colours: readonly string[];
}

declare global {
  interface Window {
    pointstreamViewer: ViewerHook;
  }
}

interface StreamRow {
  name: string;
  state: string;
  session?: string;
  sessionsOpened: number;
  framesReceived: number;
  framesRejected: number;
  bytesReceived: number;
  pointsReceived: number;
  lastFrameAt?: number;
}

const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing from the page`);
  return found as T;
};

const tokenInput = element<HTMLInputElement>('token');
const tokenField = element('token-field');
const empty = {
  box: element('empty'),
  title: element('empty-title'),
  command: element('empty-command'),
  link: element('empty-link'),
};
const statusText = element('status');
const errorText = element('error');
const rows = element('session-rows');
const stopButton = element<HTMLButtonElement>('stop');
const overlay = {
  session: element('o-session'),
  points: element('o-points'),
  fps: element('o-fps'),
  dropped: element('o-dropped'),
  age: element('o-age'),
};

const fragment = new URLSearchParams(location.hash.replace(/^#/, ''));
tokenInput.value = fragment.get('token') ?? '';
const token = (): string | undefined => tokenInput.value.trim() || undefined;
/** A stream to open once it is listed (`#stream=`, or `#session=` from before streams). */
let wanted: string | undefined = fragment.get('stream') ?? fragment.get('session') ?? undefined;
empty.command.textContent = `npx pointstream send --signaling ${location.origin}/offer --stream lidar-1`;
/** The token field is shown only when the server wants one (its /healthz, or a 401). */
function showTokenField(): void {
  tokenField.hidden = false;
  if (!empty.command.textContent.includes('--token')) empty.command.textContent += ' --token …';
}
if (tokenInput.value !== '') showTokenField();
void fetch('/healthz', { signal: AbortSignal.timeout(3000) })
  .then(async (response) => ((await response.json()) as { auth?: boolean }).auth === true)
  .then((auth) => auth && showTokenField())
  .catch(() => undefined);
empty.link.textContent = `${location.origin}/#stream=lidar-1`;
/** Streams listed at the last refresh. */
let listed: StreamRow[] = [];

const scene = new PointScene(element('canvas-host'));
const picker = new ColourPicker(element<HTMLSelectElement>('colour'), element('legend'), (colour) =>
  requestColour(colour),
);
// `#colour=intensity` (with `#stream=`): asked for as soon as the stream is watched.
const linkedColour = fragment.get('colour');
if (linkedColour !== null && linkedColour !== '') picker.choose(linkedColour);
const format = new Intl.NumberFormat('en');

// ---- watching one session ----

let state: WatchState = 'idle';
let lastError = '';
let current: { stream: string; connection: ViewerConnection } | undefined;
/** The session that fed the watched stream at the last refresh: a new one is framed afresh. */
let watchedSession: string | undefined;
/** The node that ingests the watched stream, when it is not this one (a cluster: from `hello`). */
let watchedNode: string | undefined;
let framesShown = 0;
let lastPointCount = 0;
let dropped = 0;
let lastTransferMs = 0;
let lastDrawMs = 0;
let lastCaptureTime: number | undefined;
let sourcePoints = 0;
let lastColour = HEIGHT;
/** When the last frames were drawn, for frames/s over the last two seconds. */
const shownAt: number[] = [];

function showError(message: string): void {
  lastError = message;
  errorText.textContent = message;
  errorText.className = 'bad';
}

/** A normal end of stream: said plainly, not as an error. */
function showEnded(message: string): void {
  lastError = '';
  errorText.textContent = message;
  errorText.className = 'hint';
}

function stop(): void {
  const watched = current;
  current = undefined;
  stopButton.disabled = true;
  if (watched === undefined) return;
  if (state === 'watching' || state === 'connecting') state = 'idle';
  watched.connection.channel.close();
  watched.connection.pc.close();
  if (watched.connection.url !== undefined)
    void fetch(watched.connection.url, {
      method: 'DELETE',
      headers: authHeaders(token()),
      signal: AbortSignal.timeout(2000),
    }).catch(() => undefined);
  updateOverlay();
}

async function watch(stream: string): Promise<void> {
  stop();
  scene.clear();
  wanted = undefined;
  watchedSession = listed.find((row) => row.name === stream)?.session;
  watchedNode = undefined;
  framesShown = lastPointCount = dropped = sourcePoints = 0;
  lastCaptureTime = undefined;
  lastColour = HEIGHT;
  picker.reset();
  shownAt.length = 0;
  state = 'connecting';
  showError('');
  overlay.session.textContent = `stream ${short(stream)} connecting`;
  let connection: ViewerConnection;
  try {
    connection = await openViewer(location.origin, stream, token());
  } catch (error) {
    state = 'error';
    showError(`Cannot watch ${short(stream)}: ${(error as Error).message}`);
    updateOverlay();
    throw error;
  }
  const watched = { stream, connection };
  current = watched;
  stopButton.disabled = false;
  let hello!: () => void;
  const helloReceived = new Promise<void>((resolve) => (hello = resolve));
  let reassembler = new ViewerReassembler(250_000);
  /** When the first message of the frame being received arrived. */
  let frameStartedAt = 0;
  const { channel, pc } = connection;
  connection.listen((message) => {
    if (current !== watched) return;
    const data = message as string | ArrayBuffer;
    if (typeof data === 'string') {
      const control = decodeViewerControl(data);
      if (control?.type === 'hello') {
        try {
          reassembler = new ViewerReassembler(control.maxPoints);
        } catch {
          state = 'error';
          showError(`Bad hello from the server: a budget of ${control.maxPoints} points`);
          stop();
          return;
        }
        // A stream of another node: this node's /stats does not list it; the hello says where.
        if (control.node !== undefined) {
          watchedNode = control.node;
          watchedSession = control.session === '' ? undefined : control.session;
        }
        state = 'watching';
        picker.setFields(control.fields ?? []);
        // A choice made before (another stream, a reconnect) is asked for again.
        if (picker.colour !== HEIGHT) requestColour(picker.colour);
        hello();
      } else if (control?.type === 'fields') {
        picker.setFields(control.fields);
      } else if (control?.type === 'error') {
        // A request refused (a colour the stream cannot give): said, and the view goes on.
        showError(`${control.message} (${control.code})`);
        picker.refused();
      } else if (control?.type === 'closing') {
        // The server sends PS_ERR_SESSION_CLOSED for a normal end, a failure's own code otherwise.
        if (control.code === ErrorCodes.SESSION_CLOSED) {
          state = 'ended';
          showEnded(`Stream ended: ${control.message}.`);
        } else if (control.code === ErrorCodes.SESSION_MOVED) {
          // The node drains: watch the stream again as soon as it is listed (through a front,
          // on another node).
          state = 'ended';
          wanted = stream;
          showEnded(`The node is draining: watching ${short(stream)} again elsewhere…`);
        } else {
          state = 'closed';
          showError(`The server ended this view: ${control.message} (${control.code})`);
        }
      }
      return;
    }
    const started = performance.now();
    if (!reassembler.receiving) frameStartedAt = started;
    let frame: ViewerFrame | undefined;
    try {
      frame = reassembler.push(data);
    } catch (error) {
      if (!(error instanceof PointstreamError)) throw error;
      state = 'error';
      showError(`Bad data from the server: ${error.message} (${error.code})`);
      stop();
      return;
    }
    if (frame === undefined) return;
    lastTransferMs = started - frameStartedAt;
    draw(frame, started, channel);
  });
  channel.addEventListener('close', () => {
    if (current !== watched) return;
    if (state === 'watching' || state === 'connecting') {
      state = 'closed';
      if (lastError === '') showError('The viewer connection closed.');
    }
    current = undefined;
    stopButton.disabled = true;
    pc.close();
    hello();
    updateOverlay();
  });
  pc.addEventListener('connectionstatechange', () => {
    if (pc.connectionState === 'failed' && current === watched) {
      state = 'error';
      showError('Connection failed (ICE/DTLS): is UDP to the server open?');
      stop();
    }
  });
  updateOverlay();
  // Watching once the server has said hello: from then on it sends this page frames.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(resolve, 10_000, true)));
  const late = await Promise.race([helloReceived.then(() => false), timedOut]);
  clearTimeout(timer);
  if (late && current === watched) {
    state = 'error';
    showError('Connection failed: the server did not greet the viewer within 10 s');
    stop();
  }
  // The message and close handlers change it meanwhile.
  if ((state as WatchState) !== 'watching') throw new Error(lastError || `viewer ${state}`);
  updateOverlay();
}

/** Asks the server for frames coloured by `colour`; the next frames carry its channel. */
function requestColour(colour: string): void {
  const channel = current?.connection.channel;
  picker.choose(colour);
  if (channel?.readyState === 'open') channel.send(encodeViewerColour(colour));
  if (lastError !== '' && errorText.className === 'bad' && state === 'watching') showError('');
}

function draw(frame: ViewerFrame, started: number, channel: RTCDataChannel): void {
  const frameSeq = frame.seq;
  // The channel of the colour chosen; frames sent before the choice arrived carry the old one.
  const colour = frame.colours.find((c) => c.name === picker.colour) ?? frame.colours[0];
  scene.show(frame, colour, (superseded) => {
    // Drawn or skipped for a newer one: either way the server may send the next.
    if (channel.readyState === 'open') channel.send(encodeViewerAck(frameSeq));
    if (superseded) return;
    framesShown++;
    lastPointCount = frame.pointCount;
    sourcePoints = frame.sourcePointCount;
    dropped = frame.dropped;
    lastCaptureTime = frame.captureTime;
    lastColour = colour?.name ?? HEIGHT;
    picker.showLegend(frame, colour);
    lastDrawMs = performance.now() - started;
    shownAt.push(performance.now());
    updateOverlay();
  });
}

function framesPerSecond(): number {
  const now = performance.now();
  while (shownAt.length > 0 && (shownAt[0] as number) < now - 2000) shownAt.shift();
  return shownAt.length / 2;
}

/** Long names (unnamed streams are named after their 22-character session id) cut for display. */
function short(name: string): string {
  return name.length > 24 ? `${name.slice(0, 8)}…` : name;
}

function updateEmpty(): void {
  const showing = current !== undefined && framesShown > 0;
  empty.box.hidden = showing;
  // The figures mean nothing until a stream is watched.
  element('overlay').hidden = current === undefined && !showing;
  if (showing) return;
  if (current !== undefined)
    empty.title.textContent = `Watching ${short(current.stream)}: waiting for its frames (a stream stays watched while its sender reconnects).`;
  else if (listed.length > 0)
    empty.title.textContent = `${listed.length} stream${listed.length === 1 ? '' : 's'} below: pick one to watch. To start another:`;
  else empty.title.textContent = 'No stream yet. Start one from a terminal in your clone:';
}

function updateOverlay(): void {
  updateEmpty();
  const stream = current?.stream;
  overlay.session.textContent =
    stream === undefined
      ? `no stream watched (${state})`
      : `stream ${short(stream)}${watchedSession === undefined ? ' (between sessions)' : ` · session ${watchedSession.slice(0, 8)}…`}${watchedNode === undefined ? '' : ` · node ${short(watchedNode)}`}`;
  overlay.points.textContent =
    framesShown === 0
      ? '–'
      : `${format.format(lastPointCount)}${sourcePoints > lastPointCount ? ` of ${format.format(sourcePoints)}` : ''}`;
  overlay.points.dataset.count = String(lastPointCount);
  overlay.fps.textContent = framesShown === 0 ? '–' : framesPerSecond().toFixed(1);
  overlay.dropped.textContent = framesShown === 0 ? '–' : format.format(dropped);
  overlay.age.textContent =
    lastCaptureTime === undefined ? '–' : `${Math.max(0, Date.now() - lastCaptureTime)} ms`;
}

stopButton.addEventListener('click', () => stop());

// ---- the list of sessions ----

interface Previous {
  at: number;
  frames: number;
  bytes: number;
  points: number;
}
const previous = new Map<string, Previous & { rate: string; mbps: string; perFrame: string }>();

async function refresh(): Promise<void> {
  let response: Response;
  try {
    response = await fetch('/stats', {
      headers: authHeaders(token()),
      signal: AbortSignal.timeout(3000),
    });
  } catch (error) {
    statusText.textContent = `cannot reach the server: ${(error as Error).message}`;
    statusText.className = 'bad';
    return;
  }
  if (response.status === 401) {
    showTokenField();
    statusText.textContent =
      'HTTP 401: this server needs a token: enter it above, or open /#token=…';
    statusText.className = 'bad';
    listed = [];
    renderRows([]);
    return;
  }
  if (!response.ok) {
    statusText.textContent = `GET /stats answered HTTP ${response.status}`;
    statusText.className = 'bad';
    return;
  }
  const stats = (await response.json()) as { sessions: unknown[]; streams?: StreamRow[] };
  listed = stats.streams ?? [];
  statusText.textContent = `${stats.sessions.length} live session${stats.sessions.length === 1 ? '' : 's'}, ${listed.length} stream${listed.length === 1 ? '' : 's'}, updated ${new Date().toLocaleTimeString()}`;
  statusText.className = 'hint';
  renderRows(listed);
  if (current !== undefined && watchedNode === undefined) {
    const session = listed.find((row) => row.name === current?.stream)?.session;
    // The sender came back as a new session: frame its cloud afresh when it arrives.
    if (session !== undefined && watchedSession !== undefined && session !== watchedSession)
      scene.reframe();
    watchedSession = session;
  }
  const open = wanted;
  if (open !== undefined && current?.stream !== open && listed.some((row) => row.name === open))
    void watch(open).catch(() => undefined);
  updateOverlay();
}

function renderRows(streams: StreamRow[]): void {
  const now = performance.now();
  const seen = new Set<string>();
  rows.replaceChildren();
  for (const session of streams) {
    seen.add(session.name);
    const before = previous.get(session.name);
    let rate = before?.rate ?? '–';
    let mbps = before?.mbps ?? '–';
    let perFrame = before?.perFrame ?? '–';
    if (before !== undefined && now - before.at > 500) {
      const seconds = (now - before.at) / 1000;
      const frames = session.framesReceived - before.frames;
      rate = (frames / seconds).toFixed(1);
      mbps = ((session.bytesReceived - before.bytes) / seconds / 1e6).toFixed(1);
      if (frames > 0)
        perFrame = format.format(Math.round((session.pointsReceived - before.points) / frames));
    }
    if (before === undefined || now - before.at > 500)
      previous.set(session.name, {
        at: now,
        frames: session.framesReceived,
        bytes: session.bytesReceived,
        points: session.pointsReceived,
        rate,
        mbps,
        perFrame,
      });
    const row = document.createElement('tr');
    row.dataset.stream = session.name;
    if (session.session !== undefined) row.dataset.session = session.session;
    const watching = current?.stream === session.name;
    if (watching) row.className = 'watched';
    const cells: [string, boolean][] = [
      [short(session.name), true],
      [
        `${session.state}${session.sessionsOpened > 1 ? ` (${session.sessionsOpened} sessions)` : ''}`,
        true,
      ],
      [format.format(session.framesReceived), false],
      [rate, true],
      [mbps, false],
      [perFrame, false],
      [
        session.lastFrameAt === undefined
          ? '–'
          : `${(Math.max(0, Date.now() - session.lastFrameAt) / 1000).toFixed(1)} s ago`,
        false,
      ],
      [format.format(session.framesRejected), false],
    ];
    for (const [text, narrow] of cells) {
      const cell = document.createElement('td');
      cell.textContent = text;
      if (!narrow) cell.className = 'wide-only';
      row.append(cell);
    }
    const action = document.createElement('td');
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = watching ? 'watching' : 'watch';
    button.disabled = watching;
    button.addEventListener('click', () => void watch(session.name).catch(() => undefined));
    action.append(button);
    row.append(action);
    rows.append(row);
  }
  for (const id of previous.keys()) if (!seen.has(id)) previous.delete(id);
  if (streams.length === 0) {
    const row = document.createElement('tr');
    row.innerHTML = '<td colspan="9" class="hint">no streams</td>';
    rows.append(row);
  }
}

tokenInput.addEventListener('change', () => void refresh());
window.addEventListener('hashchange', () => {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
  const token = hash.get('token');
  if (token !== null) tokenInput.value = token;
  wanted = hash.get('stream') ?? hash.get('session') ?? undefined;
  const colour = hash.get('colour');
  if (colour !== null && colour !== '') requestColour(colour);
  void refresh();
});
setInterval(() => {
  void refresh();
  updateOverlay();
}, 1000);
void refresh();

window.pointstreamViewer = {
  watch,
  stop,
  get stream() {
    return current?.stream;
  },
  get state() {
    return state;
  },
  get error() {
    return lastError;
  },
  get framesShown() {
    return framesShown;
  },
  get lastPointCount() {
    return lastPointCount;
  },
  get dropped() {
    return dropped;
  },
  get lastTransferMs() {
    return lastTransferMs;
  },
  get lastDrawMs() {
    return lastDrawMs;
  },
  colourBy: requestColour,
  get colour() {
    return picker.colour;
  },
  get lastColour() {
    return lastColour;
  },
  get colours() {
    return picker.choices;
  },
};

updateOverlay();
