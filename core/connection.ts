/**
 * One byte stream and the replies coming back on it. Commands are written as they are given and
 * replies are matched to waiters strictly in order (nodemailer's reply-handler queue), which makes
 * PIPELINING natural: a group of N commands is one write and one waiter for N replies. One timer
 * serves the whole queue (re-armed per reply, not created per command). Any failure — socket close,
 * timeout, a protocol error, an abort — is final: the socket is destroyed and every waiter rejected
 * with a typed error naming the stage it was waiting in.
 */
import type { Duplex } from 'node:stream';
import * as tls from 'node:tls';
import {
  SmtpError, SmtpProtocolError, SmtpResponseError, SmtpServerDisconnectedError, SmtpTimeoutError, type SmtpStage,
} from './errors.js';
import { createReplyParser, DEFAULT_REPLY_LIMITS, type ReplyLimits, type ReplyParser, type SmtpReply } from './protocol/reply.js';
import type { Transcript } from './transcript.js';

export interface Timeouts {
  readonly connect: number;
  readonly greeting: number;
  readonly command: number;
  readonly data: number;
  /** Deadline for one whole operation (a connect, a send); undefined: none. */
  readonly total?: number;
}

export const DEFAULT_TIMEOUTS: Timeouts = {
  connect: 30_000,
  greeting: 60_000,
  command: 120_000,
  // RFC 5321 §4.5.3.2.6 suggests 10 minutes for the reply to the body's terminator.
  data: 600_000,
};

/** Writes below this size are batched per tick (see Connection.coalesce). */
const COALESCE_MAX = 16 * 1024;

interface Waiter {
  count: number;
  readonly replies: SmtpReply[];
  /** One stage for all replies, or one per reply (a pipelined group: mail, rcpt…, data). */
  readonly stage: SmtpStage | readonly SmtpStage[];
  readonly timeout: number;
  /** STARTTLS: nothing after this reply may be trusted; stop reading until the handshake. */
  readonly last: boolean;
  resolve(replies: SmtpReply[]): void;
  reject(error: Error): void;
}

export class Connection {
  secure: boolean;
  private socket: Duplex;
  private readonly parser: ReplyParser;
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private timerMs = 0;
  private failure: SmtpError | undefined;
  private discarding = false;
  private writingStage: SmtpStage | undefined;
  /** The socket is corked until the next tick: writes issued in one tick leave in one syscall. */
  private corked = false;
  private readonly uncork = (socket: Duplex): void => {
    this.corked = false;
    socket.uncork();
  };
  private readonly onData = (chunk: Buffer): void => this.receive(chunk);
  private readonly onClose = (): void => this.fail(this.disconnected('connection closed by the server'));
  private readonly onError = (err: Error): void => this.fail(this.disconnected(`connection error: ${err.message}`, err));

  constructor(
    socket: Duplex,
    secure: boolean,
    private readonly transcript: Transcript,
    limits: ReplyLimits = DEFAULT_REPLY_LIMITS,
  ) {
    this.socket = socket;
    this.secure = secure;
    this.parser = createReplyParser((reply) => this.dispatch(reply), limits);
    this.attach(socket);
  }

  get closed(): boolean {
    return this.failure !== undefined;
  }

  /** The error that ended this connection, if it has ended. */
  get closedBy(): SmtpError | undefined {
    return this.failure;
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  get localAddress(): string | undefined {
    return (this.socket as { localAddress?: string }).localAddress;
  }

  /** Waits for `count` replies without writing anything (the greeting). */
  expect(count: number, stage: SmtpStage | readonly SmtpStage[], timeout: number, last = false): Promise<SmtpReply[]> {
    if (this.failure) return Promise.reject(this.notConnected(typeof stage === 'string' ? stage : stage[0]!));
    return new Promise<SmtpReply[]>((resolve, reject) => {
      this.waiters.push({ count, replies: [], stage, timeout, last, resolve, reject });
      if (this.waiters.length === 1) this.armTimer();
    });
  }

  /** Writes `text` (one or more CRLF-terminated commands) and waits for `count` replies. */
  send(text: string, count: number, stage: SmtpStage | readonly SmtpStage[], timeout: number, last = false): Promise<SmtpReply[]> {
    const p = this.expect(count, stage, timeout, last);
    if (!this.failure) {
      if (text.length < COALESCE_MAX) this.coalesce();
      this.socket.write(text);
    }
    return p;
  }

  /** One command, one reply. */
  async command(text: string, stage: SmtpStage, timeout: number): Promise<SmtpReply> {
    return (await this.send(text, 1, stage, timeout))[0]!;
  }

  /**
   * Writes bytes; resolves once the socket will take more (backpressure), or fails on `timeout`.
   * `flushed`, when given, is called once the socket is done with `data` (handed to the kernel, or
   * the write failed): only then may the caller reuse that memory. A corked write is not flushed
   * before the next tick, so the call can come long after this method returned. It is never called
   * when the connection had already failed.
   */
  write(data: Buffer | string, stage: SmtpStage, timeout: number, flushed?: (err?: Error | null) => void): Promise<void> | undefined {
    if (this.failure) return Promise.reject(this.notConnected(stage));
    if (data.length < COALESCE_MAX) this.coalesce();
    if (flushed ? this.socket.write(data, flushed) : this.socket.write(data)) return undefined;
    return this.drain(stage, timeout);
  }

  /**
   * Write batching: the first write in a tick corks the socket and the rest of the tick's writes
   * (a body's terminator and the next transaction's MAIL/RCPT/DATA, a BDAT header and its chunk)
   * join it; the uncork on the next tick hands them to the kernel in one writev. nextTick runs
   * after the microtask queue has drained, so writes made by promise continuations in the same
   * turn are included, and nothing waits longer than the current turn. Only small writes cork
   * (under COALESCE_MAX): a large one is a syscall on its own anyway, and writing it at once keeps
   * backpressure and write errors where the caller is.
   */
  private coalesce(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(this.uncork, this.socket);
  }

  private drain(stage: SmtpStage, timeout: number): Promise<void> {
    // Until the socket drains, a failure belongs to this write (the bytes are not all sent),
    // not to a reply waiter queued behind it.
    this.writingStage = stage;
    return new Promise<void>((resolve, reject) => {
      const socket = this.socket;
      const done = (err?: Error) => {
        if (this.writingStage === stage) this.writingStage = undefined;
        clearTimeout(timer);
        socket.off('drain', onDrain);
        socket.off('close', onClose);
        if (err) reject(err); else resolve();
      };
      const onDrain = () => done();
      const onClose = () => done(this.failure ?? this.disconnected('connection closed while sending the body', undefined, stage));
      const timer = setTimeout(() => {
        const err = new SmtpTimeoutError(`${stage}: no progress sending the body for ${timeout} ms`, timeout, { stage });
        this.fail(err);
        done(err);
      }, timeout);
      socket.on('drain', onDrain);
      socket.on('close', onClose);
    });
  }

  /**
   * Replaces the plaintext stream by a TLS one over it (STARTTLS). Bytes the server sent after its
   * 220 and before the handshake were already dropped (see `last`); the parser starts clean.
   */
  async upgradeTls(options: tls.ConnectionOptions, timeout: number): Promise<tls.TLSSocket> {
    if (this.failure) throw this.notConnected('starttls');
    const raw = this.socket;
    this.detach(raw);
    this.parser.reset();
    const secure = tls.connect({ ...options, socket: raw });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new SmtpTimeoutError(`TLS handshake timed out after ${timeout} ms`, timeout, { stage: 'starttls' })), timeout);
        secure.once('secureConnect', () => { clearTimeout(timer); resolve(); });
        secure.once('error', (err: Error & { code?: string }) => {
          clearTimeout(timer);
          if (err instanceof SmtpError) return reject(err);
          // The server hanging up mid-handshake is a disconnect, not a TLS verdict.
          if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || /socket disconnected/i.test(err.message)) {
            return reject(this.disconnected(`connection closed during the TLS handshake (${err.message})`, err, 'starttls'));
          }
          reject(new SmtpError(`TLS handshake failed: ${err.message}`, { stage: 'starttls', cause: err, permanent: isCertificateError(err) }));
        });
        secure.once('close', () => { clearTimeout(timer); reject(this.disconnected('connection closed during the TLS handshake', undefined, 'starttls')); });
      });
    } catch (err) {
      secure.destroy();
      raw.destroy();
      this.fail(err as SmtpError);
      throw err;
    }
    this.socket = secure;
    this.secure = true;
    this.discarding = false;
    this.attach(secure);
    return secure;
  }

  /** Ends the connection with `error` (default: closed by the client). Idempotent. */
  fail(error: SmtpError): void {
    if (this.failure) return;
    this.failure = error;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.detach(this.socket);
    // Keep a listener: a late socket error after destroy must not become an uncaught exception.
    this.socket.on('error', noop);
    this.socket.destroy();
    const waiters = this.waiters.splice(0);
    for (const w of waiters) w.reject(error);
  }

  /** Closes the socket; later calls fail with SmtpServerDisconnectedError. */
  close(): void {
    this.fail(new SmtpServerDisconnectedError('connection closed', { stage: 'command' }));
  }

  /** Half-closes after QUIT so the server sees a clean end. */
  end(): void {
    if (this.failure) return;
    this.failure = new SmtpServerDisconnectedError('connection closed', { stage: 'quit' });
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.detach(this.socket);
    this.socket.on('error', noop);
    this.socket.end();
    // A server that never closes its side must not keep us alive.
    const s = this.socket;
    setTimeout(() => s.destroy(), 1000).unref();
    for (const w of this.waiters.splice(0)) w.reject(this.failure);
  }

  private attach(socket: Duplex): void {
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  private detach(socket: Duplex): void {
    socket.off('data', this.onData);
    socket.off('close', this.onClose);
    socket.off('error', this.onError);
  }

  private receive(chunk: Buffer): void {
    if (this.discarding) return;
    try {
      this.parser.push(chunk);
    } catch (err) {
      const e = err instanceof SmtpError ? err : new SmtpProtocolError({ code: 500, lines: [String(err)], message: String(err) });
      this.fail(withStage(scrubbed(e, this.transcript), this.currentStage()));
    }
  }

  private dispatch(reply: SmtpReply): void {
    if (this.discarding) return;
    if (this.transcript.enabled) for (let i = 0; i < reply.lines.length; i++) {
      this.transcript.server(`${reply.code}${i === reply.lines.length - 1 ? ' ' : '-'}${reply.lines[i]}`);
    }
    const w = this.waiters[0];
    if (!w) {
      // Nothing was asked. A 421 is the server leaving (idle timeout, shutdown); anything else
      // means client and server no longer agree on which reply belongs to which command.
      const stage = this.currentStage();
      this.fail(reply.code === 421
        ? this.disconnected(`server closed the connection: ${reply.code} ${reply.message}`, undefined, stage)
        : new SmtpProtocolError(reply, `unexpected reply with no command pending: ${reply.code} ${reply.message}`, { stage }));
      return;
    }
    w.replies.push(reply);
    if (--w.count > 0) {
      this.timer?.refresh();
      return;
    }
    this.waiters.shift();
    if (w.last && reply.code === 220) {
      this.discarding = true;
      this.socket.off('data', this.onData);
    }
    this.armTimer();
    w.resolve(w.replies);
  }

  private armTimer(): void {
    const head = this.waiters[0];
    if (!head) return; // an idle timer firing finds no waiter and does nothing
    if (this.timer && this.timerMs === head.timeout) {
      this.timer.refresh();
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timerMs = head.timeout;
    this.timer = setTimeout(() => this.onTimeout(), head.timeout);
    this.timer.unref?.();
  }

  private onTimeout(): void {
    const head = this.waiters[0];
    if (!head) return;
    const stage = this.currentStage();
    this.fail(new SmtpTimeoutError(`${stage}: no reply from the server within ${head.timeout} ms`, head.timeout, { stage }));
  }

  /** The stage in flight: a write still draining, else the reply awaited now. */
  get stage(): SmtpStage | undefined {
    return this.writingStage ?? (this.waiters[0] ? this.currentStage() : undefined);
  }

  private currentStage(): SmtpStage {
    if (this.writingStage) return this.writingStage;
    const head = this.waiters[0];
    if (!head) return 'command';
    return typeof head.stage === 'string' ? head.stage : head.stage[Math.min(head.replies.length, head.stage.length - 1)]!;
  }

  private disconnected(message: string, cause?: unknown, stage?: SmtpStage): SmtpServerDisconnectedError {
    const s = stage ?? this.currentStage();
    return new SmtpServerDisconnectedError(`${s}: ${message}`, { stage: s, cause });
  }

  private notConnected(stage: SmtpStage): SmtpError {
    const f = this.failure!;
    if (f instanceof SmtpServerDisconnectedError) {
      return new SmtpServerDisconnectedError(`${stage}: not connected (${f.message})`, { stage, cause: f });
    }
    return f;
  }
}

/** A server may echo our AUTH payload inside garbage: keep secrets out of the error too. */
function scrubbed(e: SmtpError, transcript: Transcript): SmtpError {
  const clean = transcript.scrub(e.message);
  if (clean !== e.message) e.message = clean;
  if (e instanceof SmtpResponseError) {
    const lines = e.reply.lines.map((l) => transcript.scrub(l));
    (e as { reply: SmtpReply }).reply = { ...e.reply, lines, message: lines.join('\n') };
  }
  return e;
}

function withStage(e: SmtpError, stage: SmtpStage): SmtpError {
  if (e.stage === undefined) (e as { stage?: SmtpStage }).stage = stage;
  return e;
}

function isCertificateError(err: Error): boolean {
  const code = (err as { code?: string }).code ?? '';
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT_ALTNAME/.test(code);
}

function noop(): void {}
