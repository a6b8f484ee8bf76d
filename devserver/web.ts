/**
 * The web inbox of the dev sink (API.md, "The dev inbox"): a page and a JSON API on loopback,
 * served by the sink's own process with `node:http`.
 *
 *   GET    /                                  the page (page.ts)
 *   GET    /api/messages                      [{ id, from, to, subject, date, size }], newest first
 *   DELETE /api/messages                      deletes every message → { deleted }
 *   GET    /api/messages/:id                  { id, from, to, subject, date, text, html, headers, attachments }
 *   GET    /api/messages/:id/raw              the stored message, as text
 *   GET    /api/messages/:id/html             the HTML body made safe to frame (render.ts)
 *   GET    /api/messages/:id/attachments/:n   download of attachment n (its index in `attachments`)
 *   GET    /api/messages/:id/inline/:n        attachment n as an image, for `cid:` links
 *   GET    /api/events                        server-sent events: `message` (a summary), `cleared`
 *
 * Everything in a message is hostile, and so is every other page open in the same browser:
 * - It listens on 127.0.0.1 only and answers only requests whose Host is this address (or
 *   localhost) and port, so a site that rebinds its DNS name to 127.0.0.1 reads nothing.
 * - DELETE is refused when the browser says the request comes from another site.
 * - Ids and part numbers are checked and looked up in the mailbox's index, never joined to a path.
 * - Every response but the page and the framed message carries a sandboxing CSP and `nosniff`;
 *   downloads are `attachment` with a cleaned-up file name and a well-formed Content-Type.
 */
import { createReadStream } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { parseMessage, openAttachment, type ParsedMessage } from './detail.js';
import { attachmentDisposition, isInlineImage, safeContentType, safeFilename } from './download.js';
import type { IndexedMessage, Mailbox } from './mailbox.js';
import { INBOX_CSS, INBOX_JS, inboxPage, PAGE_CSP } from './page.js';
import { MESSAGE_CSP, renderMessageHtml } from './render.js';
import type { MessageSummary } from './summary.js';

export interface InboxOptions {
  /** 0 picks a free port. */
  readonly port: number;
  /** Shown on the empty page: where to send mail (the sink's address). */
  readonly smtpUrl?: string;
}

export interface InboxServer {
  /** `http://127.0.0.1:PORT/` */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
/** Seconds between keep-alive comments on an event stream (proxies and browsers drop idle ones). */
const HEARTBEAT_MS = 15_000;
/** More open event streams than this is a leak somewhere, not a developer with tabs. */
const MAX_EVENT_STREAMS = 64;
/** Parsed messages kept for the frame and its images (one message is opened, then its parts). */
const PARSED_CACHE = 8;
/** …each at most this many characters of text and HTML. */
const PARSED_CACHE_CHARS = 1_000_000;

/** A part of a response's headers every API answer shares: nothing in it runs or is sniffed. */
const API_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: Readonly<Record<string, string>> = {}) {
    super(message);
  }
}

export async function startInbox(mailbox: Mailbox, options: InboxOptions): Promise<InboxServer> {
  const streams = new Set<http.ServerResponse>();
  const parsed = new Map<string, ParsedMessage>();
  let port = 0;

  async function parsedMessage(message: IndexedMessage): Promise<ParsedMessage> {
    const cached = parsed.get(message.summary.id);
    if (cached) return cached;
    const result = await parseMessage(message.file, message.summary);
    // Only small ones are kept: a message's text and HTML are held while it is parsed, not after.
    if ((result.detail.text?.length ?? 0) + (result.detail.html?.length ?? 0) <= PARSED_CACHE_CHARS) {
      parsed.set(message.summary.id, result);
      if (parsed.size > PARSED_CACHE) parsed.delete(parsed.keys().next().value!);
    }
    return result;
  }

  function messageOf(id: string): IndexedMessage {
    const message = mailbox.find(id);
    // The id is not echoed: it is whatever the request said.
    if (!message) throw new HttpError(404, 'no message with this id');
    return message;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    checkHost(req, port);
    const url = new URL(req.url ?? '/', `http://${HOST}:${port}`);
    const parts = url.pathname.split('/').slice(1).map(decodeSegment);
    const method = req.method ?? 'GET';

    if (url.pathname === '/' || url.pathname === '/index.html') {
      allow(method, ['GET', 'HEAD']);
      return sendText(res, 200, 'text/html; charset=utf-8', inboxPage(options.smtpUrl), {
        'Content-Security-Policy': PAGE_CSP,
        'X-Frame-Options': 'DENY',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Cache-Control': 'no-store',
      });
    }
    if (url.pathname === '/inbox.js' || url.pathname === '/inbox.css') {
      allow(method, ['GET', 'HEAD']);
      const js = url.pathname === '/inbox.js';
      return sendText(res, 200, js ? 'text/javascript; charset=utf-8' : 'text/css; charset=utf-8', js ? INBOX_JS : INBOX_CSS, API_HEADERS);
    }
    if (parts[0] !== 'api') throw new HttpError(404, 'not found');

    if (parts.length === 2 && parts[1] === 'events') {
      allow(method, ['GET']);
      return openEventStream(req, res);
    }
    if (parts[1] !== 'messages') throw new HttpError(404, 'not found');

    if (parts.length === 2) {
      allow(method, ['GET', 'HEAD', 'DELETE']);
      if (method === 'DELETE') {
        checkSameOrigin(req, port);
        parsed.clear();
        return sendJson(res, 200, { deleted: await mailbox.clear() });
      }
      return sendJson(res, 200, mailbox.list());
    }

    const message = messageOf(parts[2]!);
    const id = message.summary.id;
    if (parts.length === 3) {
      allow(method, ['GET', 'HEAD']);
      return sendJson(res, 200, (await parsedMessage(message)).detail);
    }
    if (parts.length === 4 && parts[3] === 'raw') {
      allow(method, ['GET', 'HEAD']);
      return sendFile(res, message, method);
    }
    if (parts.length === 4 && parts[3] === 'html') {
      allow(method, ['GET', 'HEAD']);
      const { detail, cids } = await parsedMessage(message);
      const html = renderMessageHtml(detail.html ?? '', cids, (n) => `/api/messages/${encodeURIComponent(id)}/inline/${n}`);
      return sendText(res, 200, 'text/html; charset=utf-8', html, {
        'Content-Security-Policy': MESSAGE_CSP,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Cache-Control': 'no-store',
      });
    }
    if (parts.length === 5 && (parts[3] === 'attachments' || parts[3] === 'inline')) {
      allow(method, ['GET', 'HEAD']);
      return sendAttachment(res, message, partIndex(parts[4]!), parts[3] === 'inline', method);
    }
    throw new HttpError(404, 'not found');
  }

  function openEventStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (streams.size >= MAX_EVENT_STREAMS) throw new HttpError(503, 'too many open event streams');
    res.writeHead(200, { ...API_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
    // The browser retries after 2 s when the sink restarts; the page reloads the list on reconnect.
    res.write('retry: 2000\n: mailstage inbox\n\n');
    streams.add(res);
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    const done = (): void => {
      clearInterval(heartbeat);
      streams.delete(res);
    };
    req.once('close', done);
    res.once('close', done);
  }

  function broadcast(event: string, data: unknown): void {
    // JSON has no raw line breaks, so one `data:` line carries it whole.
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams) res.write(frame);
  }
  const onAdded = (summary: MessageSummary): void => broadcast('message', summary);
  const onCleared = (count: number): void => broadcast('cleared', { deleted: count });
  mailbox.on('added', onAdded);
  mailbox.on('cleared', onCleared);

  async function sendFile(res: http.ServerResponse, message: IndexedMessage, method: string): Promise<void> {
    const source = createReadStream(message.file);
    try {
      await new Promise<void>((resolve, reject) => {
        source.once('open', () => resolve());
        source.once('error', reject);
      });
    } catch (error) {
      throw goneOrFailed(error, message);
    }
    res.writeHead(200, {
      ...API_HEADERS,
      // Shown as source, never rendered: plain text, and the sandboxing CSP on top.
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': String(message.summary.size),
      'Content-Disposition': `inline; filename="${message.summary.id}.eml"`,
    });
    if (method === 'HEAD') {
      source.destroy();
      res.end();
      return;
    }
    await pipeline(source, res);
  }

  async function sendAttachment(res: http.ServerResponse, message: IndexedMessage, index: number, inline: boolean, method: string): Promise<void> {
    let part;
    try {
      part = await openAttachment(message.file, index);
    } catch (error) {
      throw goneOrFailed(error, message);
    }
    if (!part) throw new HttpError(404, `message ${message.summary.id} has no attachment ${index}`);
    const type = safeContentType(part.info.contentType);
    if (inline && !isInlineImage(type)) {
      part.content.destroy();
      throw new HttpError(415, `attachment ${index} is ${type}, not an image`);
    }
    const headers: Record<string, string> = { ...API_HEADERS, 'Content-Type': type };
    if (inline) {
      // The sandboxed frame has an opaque origin: a same-origin resource policy would block it.
      delete headers['Cross-Origin-Resource-Policy'];
      headers['Content-Disposition'] = 'inline';
    } else {
      headers['Content-Disposition'] = attachmentDisposition(safeFilename(part.info.filename, `attachment-${index + 1}`));
    }
    res.writeHead(200, headers);
    if (method === 'HEAD') {
      part.content.destroy();
      res.end();
      return;
    }
    await pipeline(part.content, res);
  }

  function goneOrFailed(error: unknown, message: IndexedMessage): Error {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      // Deleted behind the inbox's back (rm in a terminal): forget it.
      mailbox.forget(message.summary.id);
      parsed.delete(message.summary.id);
      return new HttpError(404, `message ${message.summary.id} is gone from the folder`);
    }
    return error as Error;
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const status = error instanceof HttpError ? error.status : 500;
      const message = error instanceof HttpError ? error.message : `cannot read the message: ${(error as Error).message}`;
      sendJson(res, status, { error: message }, error instanceof HttpError ? error.headers : {});
    });
  });
  // A request with a malformed line or header is answered 400 by node; nothing to log.
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new Error(`inbox port ${options.port} on ${HOST} is in use`, { cause: err }) : err);
    });
    server.listen({ port: options.port, host: HOST, exclusive: true }, () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://${HOST}:${port}/`,
    port,
    close: async () => {
      mailbox.off('added', onAdded);
      mailbox.off('cleared', onCleared);
      for (const res of streams) res.end();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** Only requests addressed to this server by a loopback name (DNS rebinding defence). */
function checkHost(req: http.IncomingMessage, port: number): void {
  const host = (req.headers.host ?? '').toLowerCase();
  if (![`${HOST}:${port}`, `localhost:${port}`, `[::1]:${port}`].includes(host)) {
    throw new HttpError(421, `this inbox answers to http://${HOST}:${port}/ only`);
  }
}

/** For requests that change something: not from another site (no CORS is offered either). */
function checkSameOrigin(req: http.IncomingMessage, port: number): void {
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  const ours = [`http://${HOST}:${port}`, `http://localhost:${port}`, `http://[::1]:${port}`];
  if ((site !== undefined && site !== 'same-origin' && site !== 'none') || (origin !== undefined && !ours.includes(origin))) {
    throw new HttpError(403, 'cross-site request refused');
  }
}

function allow(method: string, methods: readonly string[]): void {
  if (!methods.includes(method)) throw new HttpError(405, `${method} is not allowed here`, { Allow: methods.join(', ') });
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, 'malformed URL');
  }
}

function partIndex(value: string): number {
  if (!/^\d{1,4}$/.test(value)) throw new HttpError(404, 'no attachment with this number');
  return Number(value);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, extra: Readonly<Record<string, string>> = {}): void {
  sendText(res, status, 'application/json; charset=utf-8', JSON.stringify(body), { ...API_HEADERS, ...extra });
}

function sendText(res: http.ServerResponse, status: number, type: string, body: string, headers: Readonly<Record<string, string>>): void {
  const bytes = Buffer.from(body, 'utf8');
  res.writeHead(status, { ...headers, 'Content-Type': type, 'Content-Length': String(bytes.length) });
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}
