/**
 * smtp-server (npm) in-process on a free loopback port, as a real peer for protocol tests.
 * Messages are kept with their envelope (including DSN parameters when `hideDSN: false`).
 */
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession, type SMTPServerAddress } from 'smtp-server';
import type { AddressInfo } from 'node:net';
import { localhostCertificate } from '../../devserver/cert.js';

export interface ReceivedMessage {
  readonly from: string;
  readonly mailFrom: SMTPServerAddress | false;
  readonly rcptTo: readonly SMTPServerAddress[];
  readonly data: Buffer;
  readonly secure: boolean;
  readonly user?: string;
  readonly session: SMTPServerSession;
  /** MAIL FROM's DSN parameters (RET, ENVID) as the server parsed them (with `hideDSN: false`). */
  readonly dsn?: { readonly ret: string | null; readonly envid: string | null };
  readonly bodyType?: string;
  readonly smtpUtf8?: boolean;
}

export interface TestSmtpServer {
  readonly host: string;
  readonly port: number;
  readonly messages: ReceivedMessage[];
  readonly ca: string;
  /** Counts of connections the server has seen. */
  readonly connections: () => number;
  close(): Promise<void>;
}

export interface TestServerOptions extends SMTPServerOptions {
  /** Users accepted by AUTH (user → password); default { user: 'secret-pass' }. */
  readonly users?: Readonly<Record<string, string>>;
  /** Replaces the default onData (which stores the message and answers 250). */
  readonly onMessage?: (message: ReceivedMessage) => Error | undefined | Array<Error | string | undefined> | void;
}

export async function startSmtpServer(options: TestServerOptions = {}): Promise<TestSmtpServer> {
  const { key, cert, ca } = await localhostCertificate();
  const messages: ReceivedMessage[] = [];
  const users = options.users ?? { user: 'secret-pass' };
  let connections = 0;
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    key,
    cert,
    onConnect(_session, cb) {
      connections++;
      cb();
    },
    onAuth(auth, _session, cb) {
      const expected = users[auth.username ?? ''];
      const ok = expected !== undefined && (auth.method === 'CRAM-MD5' ? auth.validatePassword?.(expected) : auth.password === expected);
      if (auth.method === 'XOAUTH2') {
        if (expected !== undefined && auth.accessToken === expected) return cb(null, { user: auth.username });
        return cb(null, { data: { status: '401', schemes: 'bearer', scope: 'mail' } });
      }
      if (!ok) return cb(new Error('Invalid username or password'));
      cb(null, { user: auth.username });
    },
    onData(stream, session, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const data = Buffer.concat(chunks);
        if ((stream as unknown as { sizeExceeded?: boolean }).sizeExceeded) {
          const err = Object.assign(new Error('Message exceeds fixed maximum message size'), { responseCode: 552 });
          return cb(err);
        }
        const msg: ReceivedMessage = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          mailFrom: session.envelope.mailFrom,
          rcptTo: [...session.envelope.rcptTo],
          data,
          secure: session.secure,
          user: session.user as string | undefined,
          session,
          // The session's envelope object is replaced on the next transaction: copy what tests read.
          dsn: (session.envelope as { dsn?: { ret: string | null; envid: string | null } }).dsn ? { ...(session.envelope as { dsn: { ret: string | null; envid: string | null } }).dsn } : undefined,
          bodyType: (session.envelope as { bodyType?: string }).bodyType,
          smtpUtf8: (session.envelope as { smtpUtf8?: boolean }).smtpUtf8,
        };
        const answer = options.onMessage?.(msg);
        if (answer instanceof Error) return cb(answer);
        messages.push(msg);
        if (Array.isArray(answer)) return (cb as unknown as (e: null, r: unknown) => void)(null, answer);
        cb(null);
      });
    },
    ...options,
  });
  server.on('error', () => { /* client-side resets in fault tests */ });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = ((server as unknown as { server: { address(): AddressInfo } }).server.address()).port;
  return {
    host: '127.0.0.1',
    port,
    messages,
    ca,
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
