/**
 * Unsubscribe tokens: the recipient (and an optional list id), HMAC-SHA256-signed, URL-safe.
 *
 * `<payload>.<mac>`, both base64url without padding: payload = JSON `[recipient]` or
 * `[recipient, list]`, mac = HMAC-SHA256(secret, "mailstage-unsubscribe-v1" NUL payload-text). The
 * context string keeps these MACs apart from anything else the same secret may sign. Verification
 * recomputes the MAC and compares in constant time; anything malformed is `null`, never an
 * exception, because tokens arrive from the open web.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ENV_BRAND, isEnvRef, type EnvRef } from '../../api.js';
import { ListUnsubscribeError } from './errors.js';

export type UnsubscribeSecret = string | Buffer | EnvRef;

export interface UnsubscribeTokenData {
  readonly recipient: string;
  readonly list?: string;
}

const CONTEXT = 'mailstage-unsubscribe-v1\0';
const MIN_SECRET_BYTES = 16;
/** Longer than any token this module makes (a 254-octet address and a long list id). */
const MAX_TOKEN_LENGTH = 4096;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The secret as bytes; env() markers read from `environ`. Too short → error (a guessable MAC key). */
export function secretBytes(secret: UnsubscribeSecret, environ: Readonly<Record<string, string | undefined>> = process.env, field = 'secret'): Buffer {
  let value: string | Buffer;
  if (isEnvRef(secret)) {
    const spec = secret[ENV_BRAND];
    const raw = environ[spec.name];
    const resolved = raw !== undefined && raw !== '' ? raw : spec.default;
    if (resolved === undefined) throw new ListUnsubscribeError(field, `environment variable ${spec.name} is not set`);
    value = resolved;
  } else if (typeof secret === 'string' || Buffer.isBuffer(secret)) {
    value = secret;
  } else {
    throw new ListUnsubscribeError(field, 'expected a string, a Buffer or env(\'NAME\')');
  }
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8');
  if (bytes.length < MIN_SECRET_BYTES) throw new ListUnsubscribeError(field, `must be at least ${MIN_SECRET_BYTES} bytes (got ${bytes.length}); use e.g. 32 random bytes in hex`);
  return bytes;
}

function mac(payload: string, key: Buffer): Buffer {
  return createHmac('sha256', key).update(CONTEXT).update(payload).digest();
}

/** A token for `recipient` (and `list`), signed with `secret`. */
export function unsubscribeToken(recipient: string, secret: UnsubscribeSecret, list?: string): string {
  if (typeof recipient !== 'string' || recipient.trim() === '' || CONTROL.test(recipient)) {
    throw new ListUnsubscribeError('recipient', `expected an address without control characters, got ${JSON.stringify(recipient)}`);
  }
  if (list !== undefined && (typeof list !== 'string' || list === '' || CONTROL.test(list))) {
    throw new ListUnsubscribeError('list', `expected a non-empty id without control characters, got ${JSON.stringify(list)}`);
  }
  const payload = Buffer.from(JSON.stringify(list === undefined ? [recipient] : [recipient, list]), 'utf8').toString('base64url');
  return `${payload}.${mac(payload, secretBytes(secret)).toString('base64url')}`;
}

/**
 * The recipient and list a token was made for, or `null` when it is malformed, was made with another
 * secret, or was altered. For the web endpoint that receives the one-click POST.
 */
export function verifyUnsubscribeToken(token: unknown, secret: UnsubscribeSecret): { readonly recipient: string; readonly list: string | undefined } | null {
  const key = secretBytes(secret); // a bad secret is the caller's bug: it throws
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return null;
  const parts = token.split('.');
  if (parts.length !== 2 || !BASE64URL.test(parts[0]!) || !BASE64URL.test(parts[1]!)) return null;
  const [payload, given] = parts as [string, string];
  const expected = mac(payload, key);
  const received = Buffer.from(given, 'base64url');
  // Same length first (timingSafeEqual requires it); the length of a MAC is no secret.
  if (received.length !== expected.length || !timingSafeEqual(received, expected)) return null;
  // Also refuse a non-canonical encoding of the same MAC bytes (trailing bits): one token, one spelling.
  if (received.toString('base64url') !== given) return null;
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return null;
  }
  if (!Array.isArray(data) || data.length < 1 || data.length > 2 || !data.every((v) => typeof v === 'string')) return null;
  return { recipient: data[0] as string, list: data[1] as string | undefined };
}
