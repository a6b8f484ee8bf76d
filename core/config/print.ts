/**
 * `config print` / `config check`: the resolved config as the Mailer will see it, with every secret
 * replaced by `****` and plugins shown by name (they are live objects, not data).
 */
import { isPlainObject } from './env.js';
import { formatPath } from './errors.js';
import type { LoadedConfig } from './load.js';
import { parseTransportUrl } from './schema.js';

export const MASK = '****';

export interface FormatOptions {
  /** JSON (the config object alone, for tools) instead of the YAML-like text for people. */
  readonly json?: boolean;
}

export function formatConfig(loaded: LoadedConfig, options: FormatOptions = {}): string {
  const view = displayValue(loaded.config, [], loaded.secrets);
  if (options.json) return JSON.stringify(view, null, 2);
  const header = [
    `# mailstage config${loaded.filepath ? `: ${loaded.filepath}` : ''}`,
    `# environment: ${loaded.environment ?? '(base)'}`,
  ];
  const body = renderBlock(view, 0);
  return [...header, ...(body.length > 0 ? body : ['{}'])].join('\n');
}

/** A JSON-safe copy with secrets masked. */
export function displayValue(value: unknown, path: readonly PropertyKey[], secrets: ReadonlySet<string>): unknown {
  if (value === undefined) return undefined;
  if (path.length > 0 && secrets.has(formatPath(path))) return MASK;
  if (path.length === 1 && path[0] === 'plugins' && Array.isArray(value)) {
    return value.map((p: unknown) => (p as { name?: unknown }).name);
  }
  if (Buffer.isBuffer(value)) return `<Buffer ${value.length} bytes>`;
  if (typeof value === 'string' && path.length === 2 && path[0] === 'transport' && path[1] === 'url') return maskUrl(value);
  if (Array.isArray(value)) return value.map((item, i) => displayValue(item, [...path, i], secrets));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const shown = displayValue(item, [...path, key], secrets);
      if (shown !== undefined) out[key] = shown;
    }
    return out;
  }
  return value;
}

/** `smtp://user:secret@host` → `smtp://user:****@host`. */
function maskUrl(value: string): string {
  if (!parseTransportUrl(value)) return MASK; // unparseable: cannot tell where a password would be
  const url = new URL(value);
  if (url.password) url.password = MASK;
  return url.toString().replace(encodeURIComponent(MASK), MASK);
}

// ---- text rendering (a YAML subset; strings JSON-quoted so it is valid YAML) --------------------

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

function renderKey(key: string): string {
  return PLAIN_KEY.test(key) ? key : JSON.stringify(key);
}

function renderScalar(value: unknown): string {
  if (Array.isArray(value)) return '[]';
  if (isPlainObject(value)) return '{}';
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function isContainer(value: unknown): value is readonly unknown[] | Record<string, unknown> {
  return (Array.isArray(value) && value.length > 0) || (isPlainObject(value) && Object.keys(value).length > 0);
}

function renderBlock(value: unknown, depth: number): string[] {
  const pad = '  '.repeat(depth);
  if (Array.isArray(value)) {
    return value.flatMap((item) =>
      isContainer(item) ? [`${pad}-`, ...renderBlock(item, depth + 1)] : [`${pad}- ${renderScalar(item)}`],
    );
  }
  if (isPlainObject(value)) {
    return Object.entries(value).flatMap(([key, item]) =>
      isContainer(item) ? [`${pad}${renderKey(key)}:`, ...renderBlock(item, depth + 1)] : [`${pad}${renderKey(key)}: ${renderScalar(item)}`],
    );
  }
  return [`${pad}${renderScalar(value)}`];
}
