/**
 * A scripted SMTP peer on a real loopback socket, for exact transcripts and faults (go-smtp's
 * client tests, aiosmtplib's fault responses). A script is a list of steps:
 *   'S: 250 OK'      the server sends this line (CRLF added)
 *   'C: MAIL FROM:<a@b>'  the next line from the client must be exactly this
 *   'C: *'           the next line from the client, whatever it is
 *   { raw: Buffer }  the server sends these bytes as they are
 *   { body: true }   the client's lines up to and including the lone "." are taken as a body
 *   { bytes: n }     the client sends n raw octets (a BDAT chunk)
 *   'close'          the server closes the connection
 *   'stall'          the server stops answering (the client must time out)
 *   'pause'          the server stops reading (the client's writes back up in the kernel)
 *   'resume'         the server reads again (what arrived meanwhile is taken as usual)
 *   { endless: 'lines', line? }  the server sends `line` (default a `250-` continuation) forever
 *   { endless: 'bytes' }          the server sends one line that never ends (no LF) forever
 *                    (both stop when the client closes, or after `ENDLESS_CAP` octets)
 *   { drip: text, every? }        the server sends `text` one octet at a time (`every` ms apart)
 *   { tls: { key, cert } }        the server starts TLS on the socket (after its 220 to STARTTLS);
 *                    later steps run over TLS; bytes the client sent in plaintext after
 *                    STARTTLS and before the handshake are kept in `result.preTls`
 * Everything the client sent is recorded; a mismatch is reported in `result.errors`.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';

export type Step =
  | string
  | { readonly raw: Buffer | string }
  | { readonly body: true }
  | { readonly bytes: number }
  | { readonly delay: number }
  | { readonly endless: 'lines' | 'bytes'; readonly line?: string }
  | { readonly drip: Buffer | string; readonly every?: number }
  | { readonly tls: { readonly key: string; readonly cert: string } };

/** An endless step gives up after this many octets (a client that never stops reading). */
export const ENDLESS_CAP = 32 * 1024 * 1024;

export interface ScriptResult {
  /** Every line the client sent (CRLF removed), body lines included. */
  readonly lines: string[];
  /** The bodies received with `{ body: true }` (dot-unstuffed is NOT applied: wire bytes). */
  readonly bodies: Buffer[];
  readonly errors: string[];
  /** Bytes after the last scripted step (e.g. a client QUIT after a stall). */
  readonly closedByClient: boolean;
  /** Octets an endless step sent before the client went away (or the cap was reached). */
  readonly endlessSent?: number;
  /** With a `{ tls }` step: what the client sent in plaintext after STARTTLS, before the handshake. */
  readonly preTls?: Buffer;
  /** With a `{ tls }` step: whether the handshake completed. */
  readonly secure?: boolean;
}

export interface ScriptedServer {
  readonly port: number;
  readonly host: string;
  /** Resolves when the script ran to its end or the client went away. */
  readonly done: Promise<ScriptResult>;
  /** How many connections were accepted. */
  readonly accepted: () => number;
  close(): Promise<void>;
}

export async function scriptedServer(script: readonly Step[]): Promise<ScriptedServer> {
  let resolveDone!: (r: ScriptResult) => void;
  const done = new Promise<ScriptResult>((r) => { resolveDone = r; });
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (accepted > 1) { socket.destroy(); return; }
    void run(socket, script).then(resolveDone);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: '127.0.0.1',
    done,
    accepted: () => accepted,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

async function run(raw: net.Socket, script: readonly Step[]): Promise<ScriptResult> {
  const lines: string[] = [];
  const bodies: Buffer[] = [];
  const errors: string[] = [];
  let buffer = Buffer.alloc(0);
  let closed = false;
  let wake: (() => void) | undefined;
  let socket: net.Socket = raw;
  let endlessSent: number | undefined;
  let preTls: Buffer | undefined;
  let secure: boolean | undefined;
  const onData = (c: Buffer) => { buffer = Buffer.concat([buffer, c]); wake?.(); };
  const onGone = () => { closed = true; wake?.(); };
  socket.on('data', onData);
  socket.on('close', onGone);
  socket.on('error', onGone);

  const waitFor = async (pred: () => boolean): Promise<boolean> => {
    while (!pred()) {
      if (closed) return false;
      await new Promise<void>((r) => { wake = r; });
      wake = undefined;
    }
    return true;
  };
  const readLine = async (): Promise<string | undefined> => {
    if (!(await waitFor(() => buffer.includes(0x0a)))) return undefined;
    const i = buffer.indexOf(0x0a);
    const line = buffer.subarray(0, i).toString('utf8').replace(/\r$/, '');
    buffer = buffer.subarray(i + 1);
    lines.push(line);
    return line;
  };

  for (const step of script) {
    if (typeof step === 'string') {
      if (step.startsWith('S: ')) {
        if (!closed) socket.write(`${step.slice(3)}\r\n`);
      } else if (step.startsWith('C: ')) {
        const want = step.slice(3);
        const got = await readLine();
        if (got === undefined) { errors.push(`expected ${JSON.stringify(want)}, connection closed`); break; }
        if (want !== '*' && got !== want) errors.push(`expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`);
      } else if (step === 'close') {
        socket.destroy();
        closed = true;
        break;
      } else if (step === 'stall') {
        await waitFor(() => false);
        break;
      } else if (step === 'pause') {
        socket.pause();
      } else if (step === 'resume') {
        socket.resume();
      } else {
        throw new Error(`bad script step ${step}`);
      }
    } else if ('raw' in step) {
      if (!closed) socket.write(step.raw);
    } else if ('endless' in step) {
      const unit = Buffer.from(step.endless === 'bytes'
        ? 'x'.repeat(4096)
        : `${step.line ?? '250-this reply goes on and on and on'}\r\n`.repeat(64));
      let sent = 0;
      if (step.endless === 'bytes' && !closed) { socket.write('250 '); sent += 4; }
      while (!closed && sent < ENDLESS_CAP) {
        sent += unit.length;
        if (!socket.write(unit)) {
          await new Promise<void>((r) => {
            const go = () => { socket.off('drain', go); socket.off('close', go); r(); };
            socket.on('drain', go);
            socket.on('close', go);
          });
        } else {
          // Let the client's reads (and its close) run between writes.
          await new Promise((r) => setImmediate(r));
        }
      }
      endlessSent = sent;
      if (!closed) errors.push(`endless step: the client was still reading after ${sent} octets`);
      break;
    } else if ('drip' in step) {
      const bytes = Buffer.from(step.drip);
      for (let i = 0; i < bytes.length && !closed; i++) {
        socket.write(bytes.subarray(i, i + 1));
        await new Promise((r) => setTimeout(r, step.every ?? 2));
      }
    } else if ('tls' in step) {
      if (closed) break;
      raw.off('data', onData);
      if (buffer.length > 0) preTls = Buffer.from(buffer);
      buffer = Buffer.alloc(0);
      const secureSocket = new tls.TLSSocket(raw, {
        isServer: true,
        secureContext: tls.createSecureContext({ key: step.tls.key, cert: step.tls.cert }),
      });
      secure = false;
      secureSocket.on('secure', () => { secure = true; });
      secureSocket.on('data', onData);
      secureSocket.on('close', onGone);
      secureSocket.on('error', onGone);
      socket = secureSocket;
    } else if ('delay' in step) {
      await new Promise((r) => setTimeout(r, step.delay));
    } else if ('bytes' in step) {
      if (!(await waitFor(() => buffer.length >= step.bytes))) { errors.push(`expected ${step.bytes} octets, connection closed`); break; }
      bodies.push(Buffer.from(buffer.subarray(0, step.bytes)));
      buffer = buffer.subarray(step.bytes);
    } else {
      const start = lines.length;
      for (;;) {
        const l = await readLine();
        if (l === undefined) { errors.push('connection closed inside the body'); break; }
        if (l === '.') break;
      }
      bodies.push(Buffer.from(lines.slice(start, -1).map((l) => `${l}\r\n`).join('')));
    }
  }
  // Whatever the client still sends (QUIT…) is recorded for a moment.
  await new Promise((r) => setTimeout(r, 100));
  for (const l of buffer.toString('utf8').split('\n')) if (l !== '') lines.push(l.replace(/\r$/, ''));
  return { lines, bodies, errors, closedByClient: closed, endlessSent, preTls, secure };
}
