/**
 * Body encodings (mimetext has none): text parts become 7bit, quoted-printable or base64 so the
 * message is 7-bit clean with lines ≤ 76; attachments become base64, streamed in fixed memory when
 * they come from a file or a stream.
 */
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type * as Libqp from 'libqp';
import { lazyRequire } from '../lazy.js';
import { SmtpInvalidInputError } from '../errors.js';

const libqp = lazyRequire<typeof Libqp>('libqp');

export type TransferEncoding = '7bit' | 'quoted-printable' | 'base64';

/** An encoded part body: bytes in hand, or a source opened when the message is streamed. */
export type PartBody =
  | { readonly kind: 'bytes'; readonly data: Buffer }
  | { readonly kind: 'stream'; readonly open: () => AsyncIterable<Buffer>; readonly size?: number };

const LINE = 76;
const BYTES_PER_LINE = (LINE / 4) * 3; // 57 input bytes make one 76-character base64 line

/** Line ends in text become CRLF, byte for byte otherwise (latin1 maps bytes 1:1). */
export function normaliseLineEnds(data: Buffer): Buffer {
  return Buffer.from(data.toString('latin1').replace(/\r\n|\r|\n/g, '\r\n'), 'latin1');
}

function hasLongLines(data: Buffer, max: number): boolean {
  let start = 0;
  for (;;) {
    const end = data.indexOf('\r\n', start);
    if ((end < 0 ? data.length : end) - start > max) return true;
    if (end < 0) return false;
    start = end + 2;
  }
}

/**
 * 7bit for short-lined ASCII, quoted-printable when at most a quarter of the bytes are 8-bit (the
 * text stays readable), base64 otherwise (a third larger instead of up to three times for QP).
 */
export function chooseTextEncoding(data: Buffer): TransferEncoding {
  let high = 0;
  for (const b of data) if (b >= 0x80 || b === 0) high++;
  if (high === 0 && !hasLongLines(data, LINE)) return '7bit';
  return high * 4 <= data.length ? 'quoted-printable' : 'base64';
}

export function base64Lines(data: Buffer): string {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += LINE) lines.push(b64.slice(i, i + LINE));
  return lines.join('\r\n');
}

/** Octets `base64Lines` produces for `n` input bytes (lines of 76 joined by CRLF). */
export function base64Size(n: number): number {
  const chars = Math.ceil(n / 3) * 4;
  const lines = Math.ceil(chars / LINE);
  return chars + 2 * Math.max(0, lines - 1);
}

export function encodeBody(data: Buffer, encoding: TransferEncoding): Buffer {
  if (encoding === 'base64') return Buffer.from(base64Lines(data), 'ascii');
  if (encoding === 'quoted-printable') {
    const qp = libqp();
    return Buffer.from(qp.wrap(qp.encode(data), LINE), 'ascii');
  }
  return data;
}

/**
 * Base64 lines of `data` from `from` (a multiple of 57 bytes apart, or up to the end), written
 * straight into one output Buffer: only 76-character strings are made, so a large stream leaves
 * little garbage behind.
 */
function base64Block(data: Buffer, from: number, to: number, leadingBreak: boolean): Buffer {
  const lines = Math.ceil((to - from) / BYTES_PER_LINE);
  const out = Buffer.allocUnsafe(base64Size(to - from) + (leadingBreak ? 2 : 0));
  let at = 0;
  for (let i = 0; i < lines; i++) {
    if (i > 0 || leadingBreak) at += out.write('\r\n', at, 'latin1');
    const start = from + i * BYTES_PER_LINE;
    at += out.write(data.toString('base64', start, Math.min(start + BYTES_PER_LINE, to)), at, 'latin1');
  }
  return out;
}

/** Base64 of a byte stream, wrapped at 76, holding at most one input chunk at a time. */
export async function* base64Stream(source: AsyncIterable<Buffer | string | Uint8Array>): AsyncGenerator<Buffer> {
  let carry = Buffer.alloc(0); // < 57 bytes left over from the previous chunk
  let first = true;
  for await (const chunk of source) {
    let bytes = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (carry.length > 0) {
      // Complete the pending line first, so the rest of the chunk is encoded where it lies.
      const need = BYTES_PER_LINE - carry.length;
      carry = Buffer.concat([carry, bytes.subarray(0, need)]);
      bytes = bytes.subarray(Math.min(need, bytes.length));
      if (carry.length < BYTES_PER_LINE) continue;
      yield base64Block(carry, 0, carry.length, !first);
      first = false;
      carry = Buffer.alloc(0);
    }
    const whole = bytes.length - (bytes.length % BYTES_PER_LINE);
    // Copy the tail: it must not pin the (possibly large) chunk it came from.
    carry = Buffer.from(bytes.subarray(whole));
    if (whole === 0) continue;
    yield base64Block(bytes, 0, whole, !first);
    first = false;
  }
  if (carry.length > 0) yield base64Block(carry, 0, carry.length, !first);
}

/** Reads a file chunk by chunk and fails if it is not the size promised (SIZE= was computed from it). */
export async function* fileChunks(path: string, expected?: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of createReadStream(path)) {
    seen += (chunk as Buffer).length;
    yield chunk as Buffer;
  }
  if (expected !== undefined && seen !== expected) {
    throw new Error(`${path} changed while being sent (${seen} bytes, expected ${expected})`);
  }
}

/** Text/html content in any accepted form, read whole: text bodies are analysed before encoding. */
export async function readContent(
  field: string,
  content: string | Buffer | Uint8Array | Readable | { readonly path: string },
): Promise<Buffer> {
  if (typeof content === 'string') return Buffer.from(content, 'utf8');
  if (Buffer.isBuffer(content)) return content;
  if (content instanceof Uint8Array) return Buffer.from(content);
  if (content instanceof Readable) {
    const chunks: Buffer[] = [];
    for await (const chunk of content) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    return Buffer.concat(chunks);
  }
  if (content && typeof content === 'object' && typeof content.path === 'string') {
    try {
      return await readFile(content.path);
    } catch (error) {
      throw new SmtpInvalidInputError(field, `cannot read ${content.path}: ${(error as Error).message}`, { cause: error });
    }
  }
  throw new SmtpInvalidInputError(field, 'expected a string, Buffer, Readable or { path }');
}
