/**
 * Environment overlays: `environments.production` is laid over the base config. Objects merge key by
 * key; anything else (scalars, arrays, env() markers, plugins) is replaced, because merging lists
 * has no answer everyone agrees on (append? by index? by name?) and a replaced list is predictable.
 * `plugins` is a list, so an overlay that names plugins replaces the whole set.
 *
 * `undefined` in an overlay means "not mentioned" (optional properties in TypeScript produce it);
 * `null` removes the key, so an environment can drop something the base sets (e.g. `auth: null`).
 */
import { isPlainObject } from './env.js';

export function mergeOverlay(base: unknown, overlay: unknown): unknown {
  if (overlay === undefined) return base;
  if (!isPlainObject(overlay)) return overlay;
  // Merging into {} when the base has no object here still strips the overlay's nulls.
  const out: Record<string, unknown> = isPlainObject(base) ? { ...base } : {};
  for (const [key, value] of Object.entries(overlay)) {
    if (value === undefined) continue;
    if (value === null) delete out[key];
    else out[key] = mergeOverlay(out[key], value);
  }
  return out;
}
