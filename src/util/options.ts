/**
 * `defaults` with every property of `options` laid over it, except those that are `undefined`:
 * `{ ...defaults, ...options }` would let `{ x: undefined }` (an unset CLI flag, an optional field
 * passed on) erase a default. The one way options are merged in pointstream.
 */
export function withDefaults<T extends object>(defaults: T, options: Partial<T> | undefined): T {
  const merged = { ...defaults };
  if (options === undefined) return merged;
  for (const key of Object.keys(options) as (keyof T)[]) {
    const value = options[key];
    if (value !== undefined) merged[key] = value;
  }
  return merged;
}
