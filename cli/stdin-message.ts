/**
 * A complete message piped to `mailstage send`, made ready to send as sendmail -t would:
 * - the envelope comes from its headers (Bcc included), then Bcc is cut from the copy that goes
 *   out, so blind copies do not show their list to every recipient;
 * - a message without Message-ID or Date gets them (RFC 5322 §3.6 requires Date, and a relay or
 *   receiver would otherwise invent its own Message-ID, which `send` could not report), added on
 *   top; every other header and the body are left byte for byte as they came.
 *
 * Only the header section is held for that. A message up to IN_MEMORY_LIMIT is kept whole so the
 * Mailer may retry it; a larger one streams from stdin and is tried once.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Readable } from 'node:stream';
import { parseHeaderSection } from '../core/message/index.js';
import { CliInputError } from './common.js';

/** A header section not ended within this many bytes is refused: it is not a message. */
export const HEAD_LIMIT = 256 * 1024;
/** Messages up to this size are buffered (retryable); larger ones stream (tried once). */
export const IN_MEMORY_LIMIT = 8 * 1024 * 1024;

type HeaderField = ReturnType<typeof parseHeaderSection>[number];

export interface StdinMessage {
  /** What goes out: the message with Bcc removed and the missing fields added. */
  readonly raw: Buffer | Readable;
  /** The header fields as they came (Bcc included): the envelope is taken from these. */
  readonly fields: readonly HeaderField[];
  /** The fields that were added, as written (`Message-ID: <…>`). */
  readonly added: readonly string[];
}

export async function readStdinMessage(input: AsyncIterable<Buffer | string>, now = new Date()): Promise<StdinMessage> {
  const iterator = input[Symbol.asyncIterator]();
  const seen: Buffer[] = [];
  let length = 0;
  let ended = false;
  let headEnd = -1;
  const pull = async (): Promise<boolean> => {
    const next = await iterator.next();
    if (next.done) {
      ended = true;
      return false;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    seen.push(chunk);
    length += chunk.length;
    return true;
  };

  while (headEnd < 0 && length <= HEAD_LIMIT && (await pull())) headEnd = headerEnd(Buffer.concat(seen));
  if (length === 0) throw new CliInputError('send: stdin was empty (expected a .eml message)');
  if (headEnd < 0 && !ended) throw new CliInputError(`send: no end of the header section (an empty line) in the first ${HEAD_LIMIT / 1024} KiB of stdin: not a message`);
  while (!ended && length <= IN_MEMORY_LIMIT) await pull();

  const start = Buffer.concat(seen);
  const split = headEnd < 0 ? start.length : headEnd;
  const head = start.subarray(0, split);
  const fields = parseHeaderSection(head);
  const eol = head.includes('\r\n') || head.length === 0 ? '\r\n' : '\n';
  const added = missingFields(fields, now);
  const top = Buffer.from(added.map((f) => f + eol).join(''), 'utf8');
  const first = Buffer.concat([top, stripBcc(head), start.subarray(split)]);
  if (ended) return { raw: first, fields, added };
  async function* rest(): AsyncGenerator<Buffer> {
    yield first;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      yield typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    }
  }
  return { raw: Readable.from(rest(), { objectMode: false }), fields, added };
}

/** `Message-ID` and `Date` fields for what the message lacks (none if it has both). */
export function missingFields(fields: readonly HeaderField[], now: Date): string[] {
  const has = (name: string): boolean => fields.some((f) => f.name.toLowerCase() === name);
  const added: string[] = [];
  if (!has('message-id')) added.push(`Message-ID: <${randomUUID()}@${messageIdDomain(fields)}>`);
  if (!has('date')) added.push(`Date: ${rfc5322Date(now)}`);
  return added;
}

/** The From address's domain (as receivers expect), else this host's name. */
function messageIdDomain(fields: readonly HeaderField[]): string {
  const from = fields.find((f) => f.name.toLowerCase() === 'from')?.value ?? '';
  const domain = /@([A-Za-z0-9.-]+\.[A-Za-z]{2,63})\s*>?\s*$/.exec(from)?.[1] ?? os.hostname();
  return /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(domain) ? domain.toLowerCase() : 'localhost';
}

/** `Thu, 04 Dec 2026 20:47:34 +0000` (RFC 5322 §3.3; UTC, no obsolete `GMT`). */
export function rfc5322Date(date: Date): string {
  return date.toUTCString().replace(/GMT$/, '+0000');
}

/** The offset just past the header section's end (its empty line), or -1 when not in `data`. */
function headerEnd(data: Buffer): number {
  // A message that starts with its empty line has no headers.
  if (data[0] === 0x0a) return 1;
  if (data[0] === 0x0d && data[1] === 0x0a) return 2;
  const m = /\r?\n\r?\n/.exec(data.toString('latin1'));
  return m ? m.index + m[0].length : -1;
}

/** Removes Bcc fields (with their folded lines) from a header section. */
export function stripBcc(head: Buffer): Buffer {
  const text = head.toString('latin1'); // byte-preserving
  const kept = text.replace(/^bcc:.*(?:\r?\n[ \t].*)*(?:\r?\n|$)/gim, '');
  return kept === text ? head : Buffer.from(kept, 'latin1');
}
