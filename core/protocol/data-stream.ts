/**
 * The data phase transform (RFC 5321 §4.5.2): CRLF normalisation and dot-stuffing as a streaming
 * transform over Buffers.
 *
 * Why normalise: bare CR and bare LF are not line ends on the wire, but receivers disagree on how to
 * treat them. A body holding `\n.\n` or `\r.\r` could look like an end of data to one hop and not to
 * another (SMTP smuggling, 2023). So every bare CR and bare LF becomes CRLF *before* deciding where
 * lines start, and every line that then starts with `.` gets one more `.`. CRLF split across two
 * chunks stays one CRLF.
 *
 * Why it is shaped like this: bodies can be hundreds of MB and this runs for every message, so
 *  - state between chunks is two booleans (at a line start / a CR was the last byte);
 *  - chunks are scanned with native `indexOf` (memchr) per line end, never byte by byte in JS;
 *  - a chunk that needs no change is returned as the same Buffer (zero copy);
 *  - otherwise the positions of inserted bytes are recorded in one pass and the output is built in
 *    one exact-size allocation with one copy of each unchanged run.
 */
import { isAscii } from 'node:buffer';
import type { MessageBody } from '../message/types.js';

export interface DotStufferOptions {
  /** false = BDAT mode: normalise line ends only, no dot-stuffing and no terminator. */
  readonly stuff: boolean;
}

/**
 * Where `push` may render a changed chunk: returns a Buffer of at least `size` bytes that the stuffer
 * may overwrite (from a pool the caller recycles once the bytes are on the socket), or undefined to
 * allocate a fresh one. The result of `push` is then a view of its first bytes.
 */
export type OutputAllocator = (size: number) => Buffer | undefined;

export interface DotStuffer {
  /**
   * Transforms one chunk; returns the bytes to write (the SAME Buffer when nothing needed changing).
   * With `into`, a changed chunk is rendered into the Buffer it hands out (see OutputAllocator).
   */
  push(chunk: Buffer, into?: OutputAllocator): Buffer;
  /**
   * Ends the body and returns what must still be written: the line end of an unterminated last line
   * (a lone `\n` when the body ended in a CR that was already passed through) and, when stuffing, the
   * `.\r\n` terminator. So: `.\r\n` for an empty body or one ending in a line end, `\r\n.\r\n` for one
   * that does not. In BDAT mode only the missing line end (possibly an empty Buffer).
   */
  end(): Buffer;
  /** Bytes consumed by `push`. */
  readonly bytesIn: number;
  /** Bytes produced by `push` and `end`. */
  readonly bytesOut: number;
  /** true once any byte >= 0x80 has been pushed. */
  readonly eightBit: boolean;
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

const STUFF_DEFAULT: DotStufferOptions = { stuff: true };

/** The transform's state and its two operations, shared by the streaming API and `stuffWhole`. */
interface Core {
  /** Records the bytes to insert into `chunk` as (position, byte) pairs in `ins`; updates the state. */
  scan(chunk: Buffer, ins: number[]): void;
  /** The bytes `end()` must add, given the state after the last chunk. */
  tail(): Buffer;
}

// Tails are copied out of these on use so a caller mutating a returned Buffer cannot corrupt them.
const TAIL_TERM = Buffer.from('.\r\n', 'latin1');          // body empty or ended in a line end
const TAIL_CRLF_TERM = Buffer.from('\r\n.\r\n', 'latin1'); // last line unterminated
const TAIL_LF_TERM = Buffer.from('\n.\r\n', 'latin1');     // ended in a CR already passed through
const TAIL_CRLF = Buffer.from('\r\n', 'latin1');
const TAIL_LF = Buffer.from('\n', 'latin1');
const TAIL_NONE = Buffer.alloc(0);

function createCore(stuff: boolean): Core {
  // The next input byte starts a line (true before the first byte: the first line can start with '.').
  let atLineStart = true;
  // The last byte passed through was a CR. It was written as is; the next chunk decides whether its LF
  // is already there (CRLF split across chunks) or must be inserted (bare CR). Deferring the decision
  // this way keeps both chunks of a split CRLF zero-copy.
  let pendingCR = false;

  function scan(chunk: Buffer, ins: number[]): void {
    const len = chunk.length;
    let ls: number; // the position where a line starts, or -1 when the chunk starts mid-line
    if (pendingCR) {
      pendingCR = false;
      if (chunk[0] === LF) ls = 1;
      else {
        ins.push(0, LF);
        ls = 0;
      }
    } else ls = atLineStart ? 0 : -1;
    atLineStart = false;
    let from = 0;
    if (ls >= 0) {
      if (ls === len) {
        atLineStart = true;
        return;
      }
      if (stuff && chunk[ls] === DOT) ins.push(ls, DOT);
      from = ls;
    }
    // `cr` and `lf` are always the next CR/LF at or after the scan position (or -1): each byte is
    // searched once, so a CRLF line costs two native searches and nothing per byte in JS.
    let cr = chunk.indexOf(CR, from);
    let lf = chunk.indexOf(LF, from);
    while (cr !== -1 || lf !== -1) {
      if (cr !== -1 && (lf === -1 || cr < lf)) {
        if (lf === cr + 1) {
          ls = lf + 1; // CRLF: as is
          lf = ls < len ? chunk.indexOf(LF, ls) : -1;
        } else if (cr + 1 === len) {
          pendingCR = true; // decided by the next chunk or by end()
          return;
        } else {
          ins.push(cr + 1, LF); // bare CR → CRLF
          ls = cr + 1;
        }
        cr = ls < len ? chunk.indexOf(CR, ls) : -1;
      } else {
        // A LF here is bare: a CR right before it would have been taken as CRLF above, and one at the
        // end of the previous chunk was consumed through `pendingCR`.
        ins.push(lf, CR);
        ls = lf + 1;
        lf = ls < len ? chunk.indexOf(LF, ls) : -1;
      }
      if (ls === len) {
        atLineStart = true;
        return;
      }
      if (stuff && chunk[ls] === DOT) ins.push(ls, DOT);
    }
  }

  function tail(): Buffer {
    if (pendingCR) return stuff ? TAIL_LF_TERM : TAIL_LF;
    if (atLineStart) return stuff ? TAIL_TERM : TAIL_NONE;
    return stuff ? TAIL_CRLF_TERM : TAIL_CRLF;
  }

  return { scan, tail };
}

/** Copies `chunk` with the recorded insertions, then `tail`, into one exact-size Buffer. */
function render(chunk: Buffer, ins: readonly number[], tail: Buffer, into?: OutputAllocator): Buffer {
  const len = chunk.length;
  const extra = ins.length >>> 1;
  const size = len + extra + tail.length;
  const target = into?.(size);
  const out = target && target.length >= size ? (target.length === size ? target : target.subarray(0, size)) : Buffer.allocUnsafe(size);
  // One memcpy of the whole chunk to the right by `extra`, then each unchanged run is moved left into
  // place with copyWithin (a memmove). Measured faster than set(subarray()) per run: that allocates a
  // view object for every run, and with ~80-byte lines the garbage costs more than the second copy.
  out.set(chunk, extra);
  let o = 0;
  let from = extra;
  for (let i = 0; i < ins.length; i += 2) {
    const at = ins[i] + extra;
    if (at - from > 24) {
      out.copyWithin(o, from, at);
      o += at - from;
    } else {
      // Short runs (lines of dots, blank lines): a JS loop beats the call.
      for (let k = from; k < at; k++) out[o++] = out[k];
    }
    out[o++] = ins[i + 1];
    from = at;
  }
  // After the last insertion o === from: the rest of the chunk is already in place.
  if (tail.length > 0) out.set(tail, len + extra);
  return out;
}

export function createDotStuffer(options: DotStufferOptions = STUFF_DEFAULT): DotStuffer {
  const core = createCore(options.stuff);
  let bytesIn = 0;
  let bytesOut = 0;
  let eightBit = false;
  let ended = false;

  return {
    push(chunk: Buffer, into?: OutputAllocator): Buffer {
      if (ended) throw new Error('DotStuffer: push() after end()');
      const len = chunk.length;
      if (len === 0) return chunk;
      bytesIn += len;
      // isAscii is SIMD (simdutf): cheap enough per chunk, and skipped once the answer is known.
      if (!eightBit && !isAscii(chunk)) eightBit = true;
      const ins: number[] = [];
      core.scan(chunk, ins);
      if (ins.length === 0) {
        bytesOut += len;
        return chunk; // zero copy
      }
      const out = render(chunk, ins, TAIL_NONE, into);
      bytesOut += out.length;
      return out;
    },
    end(): Buffer {
      if (ended) throw new Error('DotStuffer: end() called twice');
      ended = true;
      const tail = Buffer.from(core.tail());
      bytesOut += tail.length;
      return tail;
    },
    get bytesIn() {
      return bytesIn;
    },
    get bytesOut() {
      return bytesOut;
    },
    get eightBit() {
      return eightBit;
    },
  };
}

/** Zero-copy Buffer view of any Uint8Array. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

async function* single(buf: Buffer): AsyncGenerator<Buffer> {
  if (buf.length > 0) yield buf;
}

async function* mapChunks(source: AsyncIterable<unknown>): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    let buf: Buffer;
    if (typeof chunk === 'string') buf = Buffer.from(chunk, 'utf8');
    else if (chunk instanceof Uint8Array) buf = asBuffer(chunk);
    else throw new TypeError(`message body stream yielded ${chunk === null ? 'null' : typeof chunk}, expected Buffer, Uint8Array or string`);
    // Empty chunks carry nothing and would only cost a write downstream.
    if (buf.length > 0) yield buf;
  }
}

/**
 * Normalises any MessageBody into an async iterable of non-empty Buffers: strings are encoded as
 * UTF-8, Uint8Arrays wrapped without a copy, streams and async iterables mapped chunk by chunk.
 */
export function bodyChunks(body: MessageBody): AsyncIterable<Buffer> {
  if (typeof body === 'string') return single(Buffer.from(body, 'utf8'));
  if (body instanceof Uint8Array) return single(asBuffer(body));
  if (body != null && typeof (body as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function') {
    return mapChunks(body as AsyncIterable<unknown>);
  }
  throw new TypeError('message body must be a string, Buffer, Uint8Array, Readable or async iterable');
}

/**
 * What can be known about a body before sending it: for string/Buffer/Uint8Array its byte size (raw,
 * before normalisation and stuffing — what SIZE= wants as an estimate), whether it has a byte >= 0x80,
 * and the body as a Buffer (a string is encoded once here so the caller need not encode it again).
 * Streams: nothing (`{}`).
 */
export function describeBody(body: MessageBody): { readonly size?: number; readonly eightBit?: boolean; readonly buffer?: Buffer } {
  if (typeof body === 'string') {
    const buffer = Buffer.from(body, 'utf8');
    // UTF-8 has exactly one byte per UTF-16 unit iff every unit is < 0x80: no scan needed.
    return { size: buffer.length, eightBit: buffer.length !== body.length, buffer };
  }
  if (body instanceof Uint8Array) {
    const buffer = asBuffer(body);
    return { size: buffer.length, eightBit: !isAscii(buffer), buffer };
  }
  return {};
}

/**
 * The full transformed form of a body known up front, terminator included, as ONE Buffer built with one
 * allocation — for writing a small message in a single socket write.
 */
export function stuffWhole(body: Buffer | string, options: DotStufferOptions = STUFF_DEFAULT): Buffer {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const core = createCore(options.stuff);
  const ins: number[] = [];
  if (buf.length > 0) core.scan(buf, ins);
  return render(buf, ins, core.tail());
}
