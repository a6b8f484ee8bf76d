/** Shared pieces of the Mailer tests: a real smtp-server that also counts what the pool cares
 *  about (sockets open at once, closes), and a config pointing at it. */
import type { SMTPServerSession } from 'smtp-server';
import { startSmtpServer, type TestServerOptions, type TestSmtpServer } from '../helpers/smtp-server.js';
import type { MailstageConfig } from '../../index.js';

export interface CountingServer extends TestSmtpServer {
  /** The most connections open at the same moment. */
  readonly peak: () => number;
  /** Connections the server has seen close. */
  readonly closed: () => number;
  readonly open: () => number;
}

export async function countingServer(options: TestServerOptions = {}): Promise<CountingServer> {
  let open = 0;
  let peak = 0;
  let closed = 0;
  const server = await startSmtpServer({
    ...options,
    // Replaces the helper's own onConnect (which only counted): total = open + closed.
    onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void) {
      open++;
      peak = Math.max(peak, open);
      if (options.onConnect) options.onConnect(session, cb); else cb();
    },
    onClose(session: SMTPServerSession) {
      open--;
      closed++;
      options.onClose?.(session, undefined as never);
    },
  });
  return {
    host: server.host,
    port: server.port,
    messages: server.messages,
    ca: server.ca,
    close: server.close,
    connections: () => open + closed,
    peak: () => peak,
    closed: () => closed,
    open: () => open,
  };
}

export function configFor(server: { host: string; port: number }, transport: Record<string, unknown> = {}, rest: Record<string, unknown> = {}): MailstageConfig {
  return {
    transport: { host: server.host, port: server.port, tls: 'none', ...transport },
    ...rest,
  } as MailstageConfig;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond` holds (the server sees a close a moment after the client sends QUIT). */
export async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

export function simple(i: number, extra: Record<string, unknown> = {}) {
  return { from: 'sender@example.com', to: `rcpt${i}@example.com`, subject: `message ${i}`, text: `body ${i}\n`, ...extra };
}
