/**
 * The raw builder: `message.raw` (string, Buffer, Readable or `{ path }`) goes out untouched — the
 * data phase normalises line ends and dot-stuffs. Only the header section is read, to find the
 * envelope (unless one is given) and the Message-ID.
 */
import { open, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { SmtpInvalidInputError } from '../errors.js';
import type { MessageBuilder } from '../plugin.js';
import { needsSmtpUtf8 } from './address.js';
import { envelopeFromHeaders, parseHeaderSection, type HeaderField } from './envelope.js';
import type { BuiltMessage, MailMessage, MessageBody } from './types.js';

/** Headers beyond this are not looked for: a message without a blank line in 256 KiB is odd. */
const HEAD_LIMIT = 256 * 1024;

export function rawBuilder(): MessageBuilder {
  return {
    name: 'raw',
    matches: (message) => message.raw !== undefined && message.raw !== null,
    build: buildRawMessage,
  };
}

export async function buildRawMessage(message: MailMessage): Promise<BuiltMessage> {
  const raw = message.raw;
  if (typeof raw === 'string' || Buffer.isBuffer(raw)) {
    const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
    return result(message, bytes, raw, bytes.length, bytes.some((b) => b >= 0x80));
  }
  if (raw instanceof Readable) {
    const { head, body } = await peekHead(raw);
    return result(message, head, body, undefined, undefined);
  }
  if (raw && typeof raw === 'object' && typeof (raw as { path?: unknown }).path === 'string') {
    const path = (raw as { path: string }).path;
    const [head, size] = await readFileHead(path);
    const body: AsyncIterable<Buffer> = {
      // Re-iterable: every iteration reopens the file, so a retry can resend.
      async *[Symbol.asyncIterator]() {
        for await (const chunk of createReadStream(path)) yield chunk as Buffer;
      },
    };
    return result(message, head, body, size, undefined);
  }
  throw new SmtpInvalidInputError('raw', 'expected a string, Buffer, Readable or { path }');
}

function result(message: MailMessage, head: Buffer, body: MessageBody, size: number | undefined, eightBit: boolean | undefined): BuiltMessage {
  const fields = parseHeaderSection(headerBytes(head));
  const envelope = envelopeFromHeaders(fields, message.envelope);
  const messageId = findMessageId(fields);
  // UTF-8 in the header section (RFC 6532) needs SMTPUTF8 as much as a UTF-8 address does.
  const smtpUtf8 = headerBytes(head).some((b) => b >= 0x80) || needsSmtpUtf8(envelope.from) || envelope.to.some(needsSmtpUtf8);
  return {
    envelope,
    body,
    ...(messageId === undefined ? {} : { messageId }),
    ...(size === undefined ? {} : { size }),
    needsSmtpUtf8: smtpUtf8,
    ...(eightBit === undefined ? {} : { eightBit }),
  };
}

function findMessageId(fields: readonly HeaderField[]): string | undefined {
  const value = fields.find((f) => f.name.toLowerCase() === 'message-id')?.value.trim();
  return value === undefined || value === '' ? undefined : value;
}

/** The bytes up to the first empty line (LF or CRLF line ends). */
function headerBytes(data: Buffer): Buffer {
  const end = headerEnd(data);
  return end < 0 ? data : data.subarray(0, end);
}

function headerEnd(data: Buffer): number {
  const m = /\r?\n\r?\n/.exec(data.toString('latin1'));
  return m === null ? -1 : m.index;
}

/** Reads chunks until the header section is complete, then hands back a body that replays them. */
async function peekHead(stream: Readable): Promise<{ head: Buffer; body: AsyncIterable<Buffer> }> {
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const seen: Buffer[] = [];
  let length = 0;
  let done = false;
  while (length < HEAD_LIMIT) {
    const next = await iterator.next();
    if (next.done) {
      done = true;
      break;
    }
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    seen.push(chunk);
    length += chunk.length;
    if (headerEnd(Buffer.concat(seen)) >= 0) break;
  }
  const head = Buffer.concat(seen);
  async function* body(): AsyncGenerator<Buffer> {
    yield* seen;
    if (done) return;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
      yield typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    }
  }
  return { head, body: body() };
}

async function readFileHead(path: string): Promise<[Buffer, number]> {
  try {
    const size = (await stat(path)).size;
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(Math.min(HEAD_LIMIT, size));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      return [buffer.subarray(0, bytesRead), size];
    } finally {
      await handle.close();
    }
  } catch (error) {
    throw new SmtpInvalidInputError('raw.path', `cannot read ${path}: ${(error as Error).message}`, { cause: error });
  }
}
