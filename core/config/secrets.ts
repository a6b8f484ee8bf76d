/**
 * The secret values of a resolved config, for masking what a server says. A server may echo a
 * password (or a token, a key) in a reply — `550 bad password hunter2` — and that reply travels on:
 * into the thrown error, the journal, the report, Redis and the terminal. The session masks every
 * value listed here in every reply it receives, so nothing downstream ever holds it.
 *
 * The loader knows which values were secrets (every env() value, plus the fields that are secret
 * even when written literally); it registers them here against the frozen config object it returns,
 * so a Mailer given only `loaded.config` can still ask.
 */
import type { ResolvedConfig } from './schema.js';
import { parseTransportUrl } from './schema.js';

const registry = new WeakMap<object, readonly string[]>();

/** Too short to mask without garbling every reply ("1", "ab"); nobody's real secret anyway. */
export const MIN_SECRET_LENGTH = 4;

export function registerSecrets(config: object, values: Iterable<string>): void {
  const unique = [...new Set([...(registry.get(config) ?? []), ...values])].filter((v) => v.length >= MIN_SECRET_LENGTH);
  registry.set(config, unique);
}

/** Every secret value the config holds: registered by the loader, and the literal secret fields. */
export function secretValuesOf(config: ResolvedConfig | undefined): readonly string[] {
  if (config === undefined) return [];
  const out = new Set(registry.get(config) ?? []);
  const add = (v: unknown) => {
    if (typeof v === 'string' && v.length >= MIN_SECRET_LENGTH) out.add(v);
    else if (Buffer.isBuffer(v) && v.length >= MIN_SECRET_LENGTH) out.add(v.toString('utf8'));
  };
  add(config.auth?.pass);
  for (const v of Object.values(config.auth?.credentials ?? {})) add(v);
  add(config.transport?.tlsOptions?.key);
  const url = typeof config.transport?.url === 'string' ? parseTransportUrl(config.transport.url) : undefined;
  add(url?.pass);
  return [...out];
}

/** `text` with every secret replaced by `****` (longest first, so a secret inside another goes too). */
export function maskSecrets(text: string, secrets: readonly string[]): string {
  if (secrets.length === 0) return text;
  let out = text;
  for (const s of [...secrets].sort((a, b) => b.length - a.length)) if (out.includes(s)) out = out.split(s).join('****');
  return out;
}
