/**
 * The SASL driver (RFC 4954). Authenticators speak decoded text; this file does base64, the 334
 * loop (at most `MAX_CHALLENGES` rounds, like smtplib), cancellation with `*`, and the choice of
 * mechanism: advertised ∩ installed, in preference order, falling back on authentication failure.
 */
import { SmtpAuthenticationError, SmtpError, SmtpNotSupportedError } from '../errors.js';
import type { AuthContext, Authenticator } from '../plugin.js';
import type { SmtpReply } from '../protocol/reply.js';

export const MAX_CHALLENGES = 5;

/** smtplib's order for the mechanisms it knows; others (plugins) come first, in plugin order. */
export const DEFAULT_PREFERENCE: readonly string[] = ['CRAM-MD5', 'PLAIN', 'LOGIN'];

/** What the driver needs from a session: send one line (redacted in the transcript), get a reply. */
export interface SaslChannel {
  exchange(line: string, redacted: string): Promise<SmtpReply>;
  /** Remember a secret so it is scrubbed from transcripts and error messages. */
  secret(value: string): void;
  scrub(text: string): string;
}

// RFC 4954 §4: an AUTH line with its initial response must fit in 512 octets; when it would not,
// the response goes after an empty challenge instead.
const MAX_AUTH_LINE = 497;

export async function runAuthenticator(
  channel: SaslChannel,
  auth: Authenticator,
  ctx: AuthContext,
): Promise<SmtpReply> {
  const mechanism = auth.mechanism.toUpperCase();
  for (const v of Object.values(ctx.credentials)) if (typeof v === 'string') channel.secret(v);
  const initial = await auth.start(ctx);
  let line = `AUTH ${mechanism}`;
  let deferred: string | undefined;
  if (initial !== undefined) {
    const encoded = initial === '' ? '=' : b64(initial);
    channel.secret(encoded);
    if (line.length + 1 + encoded.length <= MAX_AUTH_LINE) line += ` ${encoded}`;
    else deferred = encoded;
  }
  let reply = await channel.exchange(`${line}\r\n`, `AUTH ${mechanism}${line.length > mechanism.length + 5 ? ' <redacted>' : ''}`);
  let rounds = 0;
  while (reply.code === 334) {
    if (++rounds > MAX_CHALLENGES) {
      await cancel(channel);
      throw authError(channel, reply, `${mechanism}: server sent more than ${MAX_CHALLENGES} challenges`);
    }
    let answer: string;
    if (deferred !== undefined) {
      answer = deferred;
      deferred = undefined;
    } else {
      let response: string;
      try {
        response = await auth.next(decodeChallenge(reply.message), ctx);
      } catch (err) {
        // The authenticator gave up: cancel the exchange so the session stays usable.
        await cancel(channel);
        throw err instanceof SmtpError ? err : new SmtpAuthenticationError(reply, `${mechanism}: ${(err as Error).message}`, { stage: 'auth', cause: err });
      }
      answer = response === '' ? '' : b64(response);
      channel.secret(answer);
    }
    reply = await channel.exchange(`${answer}\r\n`, '<redacted>');
  }
  if (reply.code === 235 || reply.code === 503 && /already authenticated/i.test(reply.message)) return reply;
  throw authError(channel, reply, `${mechanism} authentication failed`);
}

async function cancel(channel: SaslChannel): Promise<void> {
  try {
    await channel.exchange('*\r\n', '*');
  } catch {
    /* the session error, if any, surfaces on the next command */
  }
}

function authError(channel: SaslChannel, reply: SmtpReply, what: string): SmtpAuthenticationError {
  // A server may echo what we sent; never let a credential reach an error message.
  const lines = reply.lines.map((l) => channel.scrub(l));
  const clean: SmtpReply = { ...reply, lines, message: lines.join('\n') };
  return new SmtpAuthenticationError(clean, `${what}: ${clean.code} ${clean.message.replace(/\n/g, ' / ')}`, { stage: 'auth' });
}

/**
 * The mechanisms `login()` tries, in order, and why others were left out (for the error when
 * none remains).
 */
export function chooseMechanisms(
  advertised: readonly string[],
  installed: readonly Authenticator[],
  preference: readonly string[] | undefined,
  secure: boolean,
  allowInsecureAuth: boolean,
): { readonly usable: Authenticator[]; readonly needTls: string[] } {
  const byName = new Map<string, Authenticator>();
  for (const a of installed) if (!byName.has(a.mechanism.toUpperCase())) byName.set(a.mechanism.toUpperCase(), a);
  const order = preference
    ? preference.map((m) => m.toUpperCase())
    : [...[...byName.keys()].filter((m) => !DEFAULT_PREFERENCE.includes(m)), ...DEFAULT_PREFERENCE];
  const offered = new Set(advertised.map((m) => m.toUpperCase()));
  const usable: Authenticator[] = [];
  const needTls: string[] = [];
  for (const m of order) {
    const a = byName.get(m);
    if (!a || !offered.has(m)) continue;
    if (a.requiresTls && !secure && !allowInsecureAuth) needTls.push(m);
    else usable.push(a);
  }
  return { usable, needTls };
}

export function noMechanismError(advertised: readonly string[], installed: readonly Authenticator[], needTls: readonly string[]): SmtpNotSupportedError {
  if (needTls.length > 0) {
    return new SmtpNotSupportedError(
      `refusing AUTH ${needTls.join('/')} on a connection that is not encrypted (use TLS, or set allowInsecureAuth: true)`,
      { stage: 'auth' },
    );
  }
  return new SmtpNotSupportedError(
    `no usable authentication mechanism: server offers [${advertised.join(', ') || 'none'}], installed [${installed.map((a) => a.mechanism).join(', ') || 'none'}]`,
    { stage: 'auth' },
  );
}

export function isAuthFailure(err: unknown): err is SmtpAuthenticationError {
  return err instanceof SmtpAuthenticationError;
}

function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function decodeChallenge(text: string): string {
  const t = text.trim();
  if (t === '') return '';
  return Buffer.from(t, 'base64').toString('utf8');
}
