import { FIELD_LIMITS, FIELD_TYPES, fieldTypeOf, isFieldName } from './fields.js';
import type { FieldArray, FieldTypeName, PointFields } from './fields.js';

/*
 * The colour channel of a live viewer frame (docs/protocol.md, "Live viewer", "Colour"): what the
 * page colours the points by, besides height (which it computes from z and costs no bytes). Pure,
 * shared by the server (which makes channels) and the page (which offers the choices), so that
 * both agree on what "rgb" means and which fields can be chosen.
 */

/** How a channel's bytes hold its values. */
export const ViewerColourKind = {
  /** One u8 per point: 0 is the channel's min, 255 its max. */
  SCALAR_U8: 1,
  /** One u16 per point: 0 is the channel's min, 65535 its max. */
  SCALAR_U16: 2,
  /** Red, green, blue u8 per point. */
  RGB8: 3,
} as const;
export type ViewerColourKind = (typeof ViewerColourKind)[keyof typeof ViewerColourKind];

/** Bytes of a channel of `kind` for `pointCount` points. */
export function colourChannelBytes(kind: ViewerColourKind, pointCount: number): number {
  return kind === ViewerColourKind.SCALAR_U16
    ? 2 * pointCount
    : kind === ViewerColourKind.RGB8
      ? 3 * pointCount
      : pointCount;
}

/** The choice that needs no channel: the page colours by z. */
export const HEIGHT = 'height';
/** The choice of true colour: a packed `rgb` field, or `red`/`green`/`blue` (or `r`/`g`/`b`) u8 fields. */
export const RGB = 'rgb';

/** A field of a stream as the page is told of it. */
export interface ViewerField {
  readonly name: string;
  readonly type: FieldTypeName;
}

/** One colour channel of a frame, as the server makes it. */
export interface ViewerColour {
  /** What was chosen: a field's name, or {@link RGB}. */
  readonly name: string;
  readonly kind: ViewerColourKind;
  /** The values the channel's 0 and its top stand for (a scalar's range over the frame; 0 and 255 for RGB). */
  readonly min: number;
  readonly max: number;
  /** The channel's bytes: u8 or little-endian u16 per point, or r, g, b per point. */
  readonly bytes: Uint8Array;
}

/** The fields of a frame, in order, as name and type (fields that are not typed arrays are skipped). */
export function viewerFieldsOf(fields: PointFields): ViewerField[] {
  const out: ViewerField[] = [];
  for (const name of Object.keys(fields)) {
    const type = fieldTypeOf(fields[name]);
    if (type !== undefined) out.push({ name, type });
  }
  return out;
}

/** Whether `name` may be asked for: {@link HEIGHT}, or a field name (rgb included). */
export function isColourName(name: unknown): name is string {
  return typeof name === 'string' && (name === HEIGHT || isFieldName(name));
}

type RgbSource =
  | { readonly packed: string }
  | { readonly red: string; readonly green: string; readonly blue: string };

/**
 * Where RGB comes from among `fields`: an `rgb` field of u32 `0x00RRGGBB` (or f32 holding those
 * bits, as PCL writes it), else `red`/`green`/`blue` u8 fields, else `r`/`g`/`b` u8 fields.
 */
export function rgbSourceOf(fields: readonly ViewerField[]): RgbSource | undefined {
  const types = new Map(fields.map((f) => [f.name, f.type]));
  const packed = types.get(RGB);
  if (packed === 'u32' || packed === 'f32') return { packed: RGB };
  for (const [red, green, blue] of [
    ['red', 'green', 'blue'],
    ['r', 'g', 'b'],
  ] as const)
    if (types.get(red) === 'u8' && types.get(green) === 'u8' && types.get(blue) === 'u8')
      return { red, green, blue };
  return undefined;
}

/**
 * What a viewer of a stream with `fields` may colour by, in the picker's order: height, RGB when
 * the fields make it, then every field that is a number per point (a packed `rgb` is not one, and
 * a field named `height` would be hidden by height itself).
 */
export function colourChoices(fields: readonly ViewerField[]): string[] {
  const choices = [HEIGHT];
  const rgb = rgbSourceOf(fields);
  if (rgb !== undefined) choices.push(RGB);
  for (const { name } of fields) {
    if (name === HEIGHT || (rgb !== undefined && 'packed' in rgb && name === rgb.packed)) continue;
    if (!choices.includes(name)) choices.push(name);
  }
  return choices;
}

/** Why `name` cannot colour a stream with `fields`, or undefined when it can. */
export function colourRefusal(name: string, fields: readonly ViewerField[]): string | undefined {
  if (colourChoices(fields).includes(name)) return undefined;
  const has =
    fields.length === 0
      ? 'it has no fields (height only)'
      : `it has ${fields.map((f) => `${f.name} (${f.type})`).join(', ')}`;
  if (name === RGB)
    return `cannot colour by rgb: that needs an rgb field (u32 0x00RRGGBB) or red, green and blue u8 fields; ${has}`;
  return `no field ${JSON.stringify(name)} to colour by: ${has}`;
}

/**
 * The channel `name` for the points `indices` of a frame (the source index of each point sent;
 * undefined: points 0 to `count` - 1), or undefined when the frame cannot make it (it lacks the
 * field). Scalars are normalised between their min and max over the finite values of these
 * points (u8 for 8-bit fields, u16 otherwise); NaN gets 0, an infinity the end it points to.
 * Reads `fields` only during the call.
 */
export function makeViewerColour(
  name: string,
  fields: PointFields,
  indices: Uint32Array | undefined,
  count: number,
): ViewerColour | undefined {
  if (name === HEIGHT) return undefined;
  const source = rgbSourceOf(viewerFieldsOf(fields));
  if (name === RGB && source !== undefined) return rgbColour(fields, source, indices, count);
  const values = fields[name];
  const type = fieldTypeOf(values);
  if (values === undefined || type === undefined || !colourChoices([{ name, type }]).includes(name))
    return undefined;
  return scalarColour(name, values, type, indices, count);
}

function rgbColour(
  fields: PointFields,
  source: RgbSource,
  indices: Uint32Array | undefined,
  count: number,
): ViewerColour {
  const bytes = new Uint8Array(3 * count);
  if ('packed' in source) {
    const values = fields[source.packed] as Uint32Array | Float32Array;
    // f32 holding the bits (PCL's rgb): read as u32, never converted.
    const packed =
      values instanceof Uint32Array
        ? values
        : new Uint32Array(values.buffer, values.byteOffset, values.length);
    for (let i = 0, k = 0; i < count; i++, k += 3) {
      const v = packed[indices === undefined ? i : (indices[i] as number)] as number;
      bytes[k] = (v >>> 16) & 0xff;
      bytes[k + 1] = (v >>> 8) & 0xff;
      bytes[k + 2] = v & 0xff;
    }
  } else {
    const r = fields[source.red] as Uint8Array;
    const g = fields[source.green] as Uint8Array;
    const b = fields[source.blue] as Uint8Array;
    for (let i = 0, k = 0; i < count; i++, k += 3) {
      const j = indices === undefined ? i : (indices[i] as number);
      bytes[k] = r[j] as number;
      bytes[k + 1] = g[j] as number;
      bytes[k + 2] = b[j] as number;
    }
  }
  return { name: RGB, kind: ViewerColourKind.RGB8, min: 0, max: 255, bytes };
}

function scalarColour(
  name: string,
  values: FieldArray,
  type: FieldTypeName,
  indices: Uint32Array | undefined,
  count: number,
): ViewerColour {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < count; i++) {
    const v = values[indices === undefined ? i : (indices[i] as number)] as number;
    // v - v is 0 for finite values only.
    if (v - v !== 0) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min > max) min = max = 0;
  const eightBit = FIELD_TYPES[type].bytes === 1;
  const top = eightBit ? 0xff : 0xffff;
  const out = eightBit ? new Uint8Array(count) : new Uint16Array(count);
  const scale = max > min ? top / (max - min) : 0;
  for (let i = 0; i < count; i++) {
    const v = values[indices === undefined ? i : (indices[i] as number)] as number;
    // NaN and the infinities give NaN or out of range: clamped to 0 (NaN) or the ends.
    const q = Math.round((v - min) * scale);
    out[i] = q > 0 ? (q < top ? q : top) : 0;
  }
  return {
    name,
    kind: eightBit ? ViewerColourKind.SCALAR_U8 : ViewerColourKind.SCALAR_U16,
    min,
    max,
    bytes: new Uint8Array(out.buffer, 0, out.byteLength),
  };
}

/** Channels a viewer frame carries at most (a preview carries those its gateways want). */
export const VIEWER_MAX_COLOURS = 8;
/** Longest channel name: a field name's limit. */
export const VIEWER_MAX_COLOUR_NAME = FIELD_LIMITS.maxNameBytes;
