import type { PointFields } from '../wire/fields.js';
import {
  HEIGHT,
  VIEWER_MAX_COLOURS,
  makeViewerColour,
  viewerFieldsOf,
} from '../wire/viewer-colour.js';
import type { ViewerColour, ViewerField } from '../wire/viewer-colour.js';
import {
  pickViewerPoints,
  viewerFrameOfPick,
  viewerFrameOfQ16,
  withColours,
} from '../wire/viewer.js';
import type { EncodedViewerFrame } from '../wire/viewer.js';
import type { ReceivedFrame } from './types.js';

/*
 * What the viewer hub makes of a frame for its viewers (src/server/viewer.ts): the positions
 * decimated and quantized once, and one colour channel per colour chosen (by its viewers here, or
 * wanted by other nodes), each made once however many viewers chose it.
 */

/** One frame as its viewers get it, shared by every viewer of its stream. */
export interface PreparedFrame {
  readonly sessionId: string;
  /** The positions (q16), without colour. */
  readonly frame: EncodedViewerFrame;
  /** The colour channels made for this frame, by name (a frame without the field has none). */
  readonly colours: ReadonlyMap<string, ViewerColour>;
  /** DATA messages by message size and colour ({@link dataKey}). */
  readonly data: Map<string, Uint8Array[]>;
}

/** The fields of `frame` (none before the wire change that adds them). */
export function fieldsOfFrame(frame: ReceivedFrame): PointFields {
  return frame.fields;
}

/**
 * The viewer frame of `frame` with the channels of `colours`, the only copy of its points and
 * fields taken (their buffers may be reused). A q16 frame within the budget is forwarded as it
 * arrived; anything else is decimated and quantized.
 */
export function prepareLocalFrame(
  frame: ReceivedFrame,
  maxPoints: number,
  colours: Iterable<string>,
): PreparedFrame {
  let encoded: EncodedViewerFrame;
  let indices: Uint32Array | undefined;
  if (frame.encoding === 'q16' && frame.encoded !== undefined && frame.pointCount <= maxPoints) {
    encoded = viewerFrameOfQ16(
      frame.encoded.slice(),
      frame.pointCount,
      frame.pointCount,
      frame.seq,
      frame.captureTime,
    );
  } else {
    const pick = pickViewerPoints(frame.points, maxPoints);
    indices = pick.indices;
    encoded = viewerFrameOfPick(pick, frame.seq, frame.captureTime);
  }
  const made = new Map<string, ViewerColour>();
  const fields = fieldsOfFrame(frame);
  if (Object.keys(fields).length > 0)
    for (const name of colours) {
      if (name === HEIGHT || made.has(name) || made.size >= VIEWER_MAX_COLOURS) continue;
      const colour = makeViewerColour(name, fields, indices, encoded.pointCount);
      if (colour !== undefined) made.set(name, colour);
    }
  return { sessionId: frame.sessionId, frame: encoded, colours: made, data: new Map() };
}

/** A frame from another node (a preview): its channels are those the preview carries. */
export function prepareRemoteFrame(sessionId: string, frame: EncodedViewerFrame): PreparedFrame {
  const colours = new Map((frame.colours ?? []).map((c) => [c.name, c]));
  return { sessionId, frame: withColours(frame, []), colours, data: new Map() };
}

/** What a viewer colouring by `colour` is sent of `prepared`: its channel, if the frame has it. */
export function frameFor(prepared: PreparedFrame, colour: string): EncodedViewerFrame {
  const channel = prepared.colours.get(colour);
  return channel === undefined ? prepared.frame : withColours(prepared.frame, [channel]);
}

/** The key of the DATA messages of `prepared` for a viewer of `colour` and message size. */
export function dataKey(prepared: PreparedFrame, colour: string, maxMessageBytes: number): string {
  return `${maxMessageBytes}:${prepared.colours.has(colour) ? colour : HEIGHT}`;
}

/** The fields each feed's frames have (as of its last frame), to tell its viewers when they change. */
export class FeedFields {
  readonly #byFeed = new Map<string, { readonly key: string; readonly list: ViewerField[] }>();

  /** The fields of `feed`, undefined while it has sent no frame. */
  get(feed: string): readonly ViewerField[] | undefined {
    return this.#byFeed.get(feed)?.list;
  }

  /** Records the fields of a frame of `feed`; returns them when they differ from the last. */
  update(feed: string, fields: PointFields | readonly ViewerField[]): ViewerField[] | undefined {
    const list = Array.isArray(fields)
      ? [...(fields as readonly ViewerField[])]
      : viewerFieldsOf(fields as PointFields);
    const key = list.map((f) => `${f.name}:${f.type}`).join(',');
    if (this.#byFeed.get(feed)?.key === key) return undefined;
    this.#byFeed.set(feed, { key, list });
    return list;
  }

  delete(feed: string): void {
    this.#byFeed.delete(feed);
  }
}

/**
 * The colours a frame is made with: those its viewers chose (height needs no channel), then those
 * `wanted` by other nodes, at most {@link VIEWER_MAX_COLOURS}.
 */
export function coloursOf(
  watchers: Iterable<{ readonly colour: string }> | undefined,
  wanted: readonly string[],
): string[] {
  const colours = new Set<string>();
  for (const viewer of watchers ?? []) if (viewer.colour !== HEIGHT) colours.add(viewer.colour);
  for (const name of wanted) colours.add(name);
  return [...colours].slice(0, VIEWER_MAX_COLOURS);
}
