/**
 * EHLO/LHLO capability parsing (RFC 5321 §4.1.1.1), with smtplib's rules: the first line is the
 * greeting text; each further line is `keyword [params]`; keywords are stored lower-case with their
 * parameters kept as sent; the pre-RFC `AUTH=LOGIN PLAIN` form merges into `auth`; a bare `250 `
 * (smtp-sink's last line) is skipped.
 */
import type { SmtpReply } from './reply.js';

const KEYWORD = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/;

export function parseCapabilities(reply: SmtpReply): Map<string, string> {
  const features = new Map<string, string>();
  for (let i = 1; i < reply.lines.length; i++) {
    const line = reply.lines[i]!.trim();
    if (line === '') continue;
    const m = KEYWORD.exec(line);
    if (!m) continue;
    const keyword = m[1]!.toLowerCase();
    const params = (m[2] ?? '').trim();
    const oldAuth = line.length > 5 && line.slice(0, 5).toLowerCase() === 'auth=';
    if (keyword === 'auth' || oldAuth) {
      // Both forms feed one mechanism list; keep each mechanism once.
      const merged = new Set((features.get('auth') ?? '').split(/\s+/).filter(Boolean));
      for (const mech of params.split(/\s+/).filter(Boolean)) merged.add(mech.toUpperCase());
      features.set('auth', [...merged].join(' '));
    } else {
      features.set(keyword, params);
    }
  }
  return features;
}

/** The advertised SASL mechanisms, upper-case, in the server's order. */
export function authMechanisms(features: ReadonlyMap<string, string>): string[] {
  return (features.get('auth') ?? '').split(/\s+/).filter(Boolean).map((m) => m.toUpperCase());
}

/** The SIZE limit in octets; undefined when SIZE is not advertised or has no (or a zero) limit. */
export function sizeLimit(features: ReadonlyMap<string, string>): number | undefined {
  const v = features.get('size');
  if (v === undefined) return undefined;
  const n = Number.parseInt(v, 10);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}
