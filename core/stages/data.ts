/**
 * The data phase: the body after a 354 (dot-stuffed, CRLF-normalised, streamed with backpressure)
 * or as BDAT chunks (RFC 3030: sized, no stuffing, each chunk acknowledged; pipelined when the
 * server allows). Bodies never have to fit in memory; a body known up front goes in one write.
 */
import { SmtpError, SmtpDataError } from '../errors.js';
import type { Connection, Timeouts } from '../connection.js';
import type { MessageBody } from '../message/types.js';
import { bodyChunks, createDotStuffer, stuffWhole } from '../protocol/data-stream.js';
import type { SmtpReply } from '../protocol/reply.js';
import type { Transcript } from '../transcript.js';

/**
 * Writes the body after DATA's 354 and returns the final replies (`count`: 1, or one per accepted
 * recipient for LMTP). A body stream that fails mid-way closes the connection: sending the
 * terminator would deliver a truncated message.
 */
export async function sendDataBody(
  conn: Connection,
  body: MessageBody,
  whole: Buffer | undefined,
  count: number,
  timeouts: Timeouts,
  transcript: Transcript,
  /**
   * Called once the body's terminator has been handed to the connection, before its reply: with
   * PIPELINING the next transaction's MAIL/RCPT/DATA may follow it right away (RFC 2920 §3.1) and,
   * written in the same turn, leaves in the same segment as the terminator.
   */
  onTerminator?: () => void,
): Promise<SmtpReply[]> {
  if (whole) {
    const bytes = stuffWhole(whole);
    if (transcript.enabled) transcript.client(`<message body: ${whole.length} octets, ${bytes.length} on the wire>`);
    const final = conn.expect(count, 'final-reply', timeouts.data);
    final.catch(noop); // observed below; a failure during the write must not go unhandled meanwhile
    const p = conn.write(bytes, 'body', timeouts.data);
    onTerminator?.();
    if (p) await p.catch(noop); // the waiter reports the failure, with the stage it happened in
    return final;
  }
  const stuffer = createDotStuffer({ stuff: true });
  const pool = new OutputPool();
  try {
    for await (const chunk of bodyChunks(body)) {
      const out = stuffer.push(chunk, pool.take);
      if (out.length === 0) continue;
      // A rendered chunk in a pooled buffer goes back to the pool once the socket has flushed it.
      const p = conn.write(out, 'body', timeouts.data, pool.lent(out));
      if (p) await p;
    }
  } catch (err) {
    throw bodyFailed(conn, err);
  }
  if (transcript.enabled) transcript.client(`<message body: ${stuffer.bytesIn} octets, ${stuffer.bytesOut} on the wire>`);
  const final = conn.expect(count, 'final-reply', timeouts.data);
  final.catch(noop);
  const p = conn.write(stuffer.end(), 'body', timeouts.data);
  onTerminator?.();
  if (p) await p.catch(noop);
  return final;
}

export interface BdatOutcome {
  /** Replies to the BDAT … LAST: one, or one per accepted recipient (LMTP). */
  readonly final: SmtpReply[];
}

/**
 * Streams the body as BDAT chunks. Each chunk is the normalised bytes of one or more input chunks,
 * at least `minChunk` octets (except the last), sent as `BDAT n` and the last as `BDAT n LAST`.
 * With PIPELINING the chunk replies are collected without waiting; the first failure stops the
 * stream and is thrown as SmtpDataError (the transaction is void: the caller sends RSET).
 */
export async function sendBdatBody(
  conn: Connection,
  body: MessageBody,
  lastCount: number,
  pipelining: boolean,
  minChunk: number,
  timeouts: Timeouts,
  transcript: Transcript,
  binary = false,
): Promise<SmtpReply[]> {
  // BINARYMIME content is sent octet for octet; text has its line ends normalised to CRLF.
  const normaliser = binary ? passThrough() : createDotStuffer({ stuff: false });
  const pending: Promise<SmtpReply[]>[] = [];
  let failed: SmtpReply | undefined;
  let held: Buffer[] = [];
  let heldBytes = 0;

  const sendChunk = async (parts: Buffer[], size: number, last: boolean): Promise<SmtpReply[] | undefined> => {
    const header = `BDAT ${size}${last ? ' LAST' : ''}\r\n`;
    if (transcript.enabled) transcript.client(`${header.trimEnd()} <${size} octets>`);
    const reply = conn.expect(last ? lastCount : 1, last ? 'final-reply' : 'body', last ? timeouts.data : timeouts.command);
    reply.catch(noop); // a write failure below rejects it before anyone awaits it
    let p = conn.write(header, 'body', timeouts.data);
    if (p) await p;
    for (const part of parts) {
      p = conn.write(part, 'body', timeouts.data);
      if (p) await p;
    }
    if (last) return reply;
    if (!pipelining) {
      const [r] = await reply;
      if (r!.code !== 250) failed = r;
      return undefined;
    }
    reply.then(([r]) => { if (r!.code !== 250 && !failed) failed = r; }, () => undefined);
    pending.push(reply);
    return undefined;
  };

  try {
    for await (const chunk of bodyChunks(body)) {
      const out = normaliser.push(chunk);
      if (out.length === 0) continue;
      held.push(out);
      heldBytes += out.length;
      if (heldBytes >= minChunk) {
        // Keep the newest bytes back so the last chunk always carries data with its LAST.
        await sendChunk(held, heldBytes, false);
        held = [];
        heldBytes = 0;
        if (failed) break;
      }
    }
  } catch (err) {
    await Promise.allSettled(pending);
    const e = bodyFailed(conn, err, false);
    throw e;
  }
  if (!failed) {
    const tail = normaliser.end();
    if (tail.length) { held.push(tail); heldBytes += tail.length; }
    const final = await sendChunk(held, heldBytes, true);
    await Promise.all(pending);
    if (!failed) return final!;
  } else {
    await Promise.allSettled(pending);
  }
  throw new SmtpDataError(failed!, `BDAT refused: ${failed!.code} ${failed!.message}`, { stage: 'body' });
}

function noop(): void {}

/** Rendered chunks at least this big are rendered into pooled buffers; smaller ones come from Node's
 *  own 8 KiB slab (Buffer.allocUnsafe), which costs no separate external allocation. */
const POOL_MIN = 4096;
/** Buffers kept for reuse: the socket holds one or two body writes at a time (its high-water mark is
 *  below one 64 KiB chunk), so a few suffice; more in flight just allocate. */
const POOL_KEEP = 4;

/**
 * Reusable output buffers for the dot-stuffer. A streamed body that needs stuffing (lines starting
 * with '.', bare LFs) would otherwise allocate one new Buffer per input chunk: external memory that
 * only a GC returns, so a long body kept tens of MB of dead chunks around between collections. A
 * buffer is lent for one socket write and only comes back through that write's callback: a corked
 * write (see Connection.coalesce) or one queued behind backpressure is not reused before the socket
 * is done with it. A write that never reports back just leaves its buffer to the GC.
 */
class OutputPool {
  private readonly free: Buffer[] = [];
  private lentBuf: Buffer | undefined;

  /** OutputAllocator: a free buffer big enough, a new one, or undefined for small outputs. */
  readonly take = (size: number): Buffer | undefined => {
    if (size < POOL_MIN) return undefined;
    let buf: Buffer | undefined;
    while ((buf = this.free.pop()) !== undefined && buf.length < size);
    // Room for the common case (64 KiB reads plus their inserted bytes) so one size serves them all.
    buf ??= Buffer.allocUnsafeSlow(Math.max(size, 80 * 1024));
    this.lentBuf = buf;
    return buf;
  };

  /** The write callback that returns the buffer behind `out`, when `out` was rendered into one. */
  lent(out: Buffer): ((err?: Error | null) => void) | undefined {
    const buf = this.lentBuf;
    this.lentBuf = undefined;
    if (buf === undefined || out.buffer !== buf.buffer) return undefined;
    return () => {
      if (this.free.length < POOL_KEEP) this.free.push(buf);
    };
  }
}

function passThrough(): { push(chunk: Buffer): Buffer; end(): Buffer } {
  return { push: (chunk) => chunk, end: () => Buffer.alloc(0) };
}

function bodyFailed(conn: Connection, err: unknown, close = true): SmtpError {
  if (err instanceof SmtpError) return err;
  const e = new SmtpError(`message body stream failed: ${(err as Error)?.message ?? String(err)}`, { stage: 'body', cause: err });
  // In DATA mode the only way to abandon the message is to drop the connection (the terminator
  // would deliver it truncated). BDAT can be abandoned with RSET: the caller does that.
  if (close) conn.fail(e);
  return e;
}
