/**
 * Envelope extensions: the ESMTP parameters on MAIL FROM and RCPT TO. The built-in ones (SIZE,
 * BODY=8BITMIME/BINARYMIME, SMTPUTF8) use the same `EnvelopeExtension` interface that plugins do
 * (the dsn plugin adds RET/ENVID/NOTIFY/ORCPT); this file only runs them and checks their output.
 */
import { SmtpInvalidInputError, SmtpNotSupportedError } from '../errors.js';
import { checkArgument } from '../protocol/command.js';
import { sizeLimit } from '../protocol/capabilities.js';
import type { EnvelopeContext, EnvelopeExtension } from '../plugin.js';

/** Options for MAIL or RCPT: typed options read by extensions, or raw ESMTP strings (smtplib). */
export type EnvelopeOptions = Readonly<Record<string, unknown>> | readonly string[];

export const sizeExtension: EnvelopeExtension = {
  name: 'size',
  option: 'size',
  mailParams(ctx, option) {
    if (!ctx.esmtp || !ctx.hasExtension('size')) return undefined;
    if (option === false) return undefined;
    const size = typeof option === 'number' ? option : ctx.message.size;
    if (size === undefined) return undefined;
    if (!Number.isInteger(size) || size < 0) throw new SmtpInvalidInputError('size', `expected a byte count, got ${String(option)}`);
    const limit = sizeLimit(ctx.features);
    if (limit !== undefined && size > limit) {
      throw new SmtpNotSupportedError(`message of ${size} octets exceeds the server's SIZE limit of ${limit} octets`, { stage: 'mail' });
    }
    return [`SIZE=${size}`];
  },
};

const BODY_TYPES = new Set(['7BIT', '8BITMIME', 'BINARYMIME']);

export const bodyExtension: EnvelopeExtension = {
  name: 'body',
  option: 'body',
  mailParams(ctx, option) {
    if (!ctx.esmtp) return undefined;
    if (option !== undefined) {
      const body = String(option).toUpperCase();
      if (!BODY_TYPES.has(body)) throw new SmtpInvalidInputError('body', `expected 7BIT, 8BITMIME or BINARYMIME, got ${String(option)}`);
      if (body === '8BITMIME' && !ctx.hasExtension('8bitmime')) throw new SmtpNotSupportedError('server does not offer 8BITMIME', { stage: 'mail' });
      if (body === 'BINARYMIME' && (!ctx.hasExtension('binarymime') || !ctx.message.chunked)) {
        throw new SmtpNotSupportedError('BODY=BINARYMIME needs BINARYMIME and CHUNKING on the server', { stage: 'mail' });
      }
      return [`BODY=${body}`];
    }
    // Binary content (NUL octets) goes unaltered as BINARYMIME when the server can take it.
    if (ctx.message.binary && ctx.message.chunked && ctx.hasExtension('binarymime')) return ['BODY=BINARYMIME'];
    // 8-bit content declared when the server offers it. A body that is 8-bit to a server that does
    // not offer 8BITMIME goes as it is, as smtplib and nodemailer do: refusing would help nobody.
    if (ctx.message.eightBit && ctx.hasExtension('8bitmime')) return ['BODY=8BITMIME'];
    return undefined;
  },
};

export const smtpUtf8Extension: EnvelopeExtension = {
  name: 'smtputf8',
  option: 'smtputf8',
  mailParams(ctx, option) {
    const wanted = option === true || (option !== false && ctx.message.needsSmtpUtf8);
    if (!wanted) return undefined;
    if (!ctx.esmtp || !ctx.hasExtension('smtputf8')) {
      throw new SmtpNotSupportedError('an address needs SMTPUTF8 (RFC 6531) and the server does not offer it', { stage: 'mail' });
    }
    return ['SMTPUTF8'];
  },
};

export const builtinEnvelopeExtensions: readonly EnvelopeExtension[] = [sizeExtension, bodyExtension, smtpUtf8Extension];

/** The parameters for MAIL FROM. */
export function mailParameters(
  extensions: readonly EnvelopeExtension[],
  ctx: EnvelopeContext,
  options: EnvelopeOptions | undefined,
): string[] {
  return collect(extensions, options, 'MAIL', (ext, value) => ext.mailParams?.(ctx, value));
}

/** The parameters for one RCPT TO. */
export function rcptParameters(
  extensions: readonly EnvelopeExtension[],
  ctx: EnvelopeContext,
  options: EnvelopeOptions | undefined,
  recipient: string,
): string[] {
  return collect(extensions, options, 'RCPT', (ext, value) => ext.rcptParams?.(ctx, value, recipient));
}

function collect(
  extensions: readonly EnvelopeExtension[],
  options: EnvelopeOptions | undefined,
  verb: 'MAIL' | 'RCPT',
  run: (ext: EnvelopeExtension, value: unknown) => readonly string[] | undefined,
): string[] {
  const raw = Array.isArray(options) ? (options as readonly string[]) : [];
  const typed = options && !Array.isArray(options) ? (options as Readonly<Record<string, unknown>>) : undefined;
  if (typed) {
    for (const key of Object.keys(typed)) {
      if (typed[key] === undefined) continue;
      if (!extensions.some((e) => e.option === key && (verb === 'MAIL' ? e.mailParams : e.rcptParams))) {
        const known = extensions.filter((e) => e.option && (verb === 'MAIL' ? e.mailParams : e.rcptParams)).map((e) => e.option);
        throw new SmtpInvalidInputError(`${verb.toLowerCase()} options`, `unknown option ${JSON.stringify(key)} (options installed extensions read: ${known.join(', ') || 'none'})`);
      }
    }
  }
  const out: string[] = [];
  const rawKeywords = new Set(raw.map((p) => keywordOf(String(p))));
  for (const ext of extensions) {
    const params = run(ext, ext.option && typed ? typed[ext.option] : undefined);
    if (!params) continue;
    for (const p of params) {
      // An explicit raw parameter overrides what an extension computed for the same keyword.
      if (!rawKeywords.has(keywordOf(p))) out.push(checkArgument(`${verb.toLowerCase()} parameter (${ext.name})`, p));
    }
  }
  for (const p of raw) out.push(checkArgument(`${verb.toLowerCase()} parameter`, String(p)));
  return out;
}

function keywordOf(param: string): string {
  const i = param.indexOf('=');
  return (i === -1 ? param : param.slice(0, i)).toUpperCase();
}
