/**
 * Faults at every step of a session, against scripted servers on real loopback sockets: the server
 * disconnects, answers 421, sends garbage, sends a line over the limit, sends a reply that never ends,
 * or stalls — at the greeting, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA and after the body's `.`.
 *
 * Each test checks the four things a caller relies on:
 *  - the operation rejects with the right typed error, naming the stage it happened in;
 *  - the socket is closed: `client.connected` is false AND the server sees the connection end
 *    (a scripted server that stalls only finishes when the client hangs up);
 *  - no unhandled rejection happened (a process listener records them);
 *  - no timer created by core is left pending (setTimeout/clearTimeout are wrapped for this file,
 *    and `process.getActiveResourcesInfo()` is compared with the start, for ref'd timers).
 */
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SmtpClient } from '../../index.js';
import {
  SmtpAbortError, SmtpAuthenticationError, SmtpConnectError, SmtpDataError, SmtpError, SmtpHeloError,
  SmtpProtocolError, SmtpRecipientsRefusedError, SmtpResponseError, SmtpSenderRefusedError,
  SmtpServerDisconnectedError, SmtpTimeoutError, type SmtpStage,
} from '../../core/errors.js';
import { scriptedServer, type ScriptResult, type ScriptedServer, type Step } from '../helpers/scripted-server.js';

// ---- harness: unhandled rejections and timers ------------------------------------------------------

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => { unhandled.push(reason); };

interface TrackedTimer { readonly ms: number; readonly where: string; fired: boolean; cleared: boolean }
const tracked = new Map<unknown, TrackedTimer>();
const realSetTimeout = globalThis.setTimeout;
const realClearTimeout = globalThis.clearTimeout;
let baselineTimeouts = 0;
const LIBRARY_DIRS = ['../../core/', '../../plugins/'].map((d) => fileURLToPath(new URL(d, import.meta.url)));

/** Timers created by the library (core/ or plugins/), with the line that created them. */
function installTimerTracker(): void {
  const patchedSet = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const stack = new Error().stack ?? '';
    const where = stack.split('\n').slice(2).find((l) => LIBRARY_DIRS.some((d) => l.includes(d)));
    if (!where) return realSetTimeout(fn, ms, ...args);
    const rec: TrackedTimer = { ms: ms ?? 0, where: where.trim(), fired: false, cleared: false };
    const t = realSetTimeout((...a: unknown[]) => { rec.fired = true; fn(...a); }, ms, ...args);
    const refresh = t.refresh.bind(t);
    t.refresh = () => { rec.fired = false; rec.cleared = false; return refresh(); };
    tracked.set(t, rec);
    return t;
  }) as unknown as typeof setTimeout;
  const patchedClear = ((t: Parameters<typeof clearTimeout>[0]) => {
    const rec = tracked.get(t);
    if (rec) rec.cleared = true;
    return realClearTimeout(t);
  }) as typeof clearTimeout;
  globalThis.setTimeout = patchedSet;
  globalThis.clearTimeout = patchedClear;
}

function pendingLibraryTimers(): TrackedTimer[] {
  return [...tracked.values()].filter((t) => !t.fired && !t.cleared);
}

function refTimeouts(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
  installTimerTracker();
  baselineTimeouts = refTimeouts();
});

afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
  globalThis.setTimeout = realSetTimeout;
  globalThis.clearTimeout = realClearTimeout;
});

const servers: ScriptedServer[] = [];
const clients: SmtpClient[] = [];

beforeEach(() => {
  unhandled.length = 0;
  tracked.clear();
});

afterEach(async () => {
  // Let late rejections and socket events surface before judging.
  await sleep(30);
  const leaks = pendingLibraryTimers().map((t) => `${t.ms} ms timer from ${t.where}`);
  const rejections = unhandled.splice(0).map((r) => `${(r as Error)?.name}: ${(r as Error)?.message ?? String(r)}`);
  for (const c of clients.splice(0)) c.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  expect(rejections, 'unhandled rejections during the test').toEqual([]);
  expect(leaks, 'timers left pending by the library after the test').toEqual([]);
});

// ---- helpers ------------------------------------------------------------------------------------

const EHLO = 'C: EHLO client.test';
const T = { connect: 2000, greeting: 250, command: 300, data: 350 } as const;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => realSetTimeout(r, ms));
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => { timer = realSetTimeout(() => reject(new Error(`${what}: not settled within ${ms} ms`)), ms); });
  try {
    return await Promise.race([p, guard]);
  } finally {
    realClearTimeout(timer);
  }
}

async function session(script: Step[], options: Record<string, unknown> = {}) {
  const server = await scriptedServer(script);
  servers.push(server);
  const client = new SmtpClient({
    host: server.host, port: server.port, localHostname: 'client.test', tls: 'none', timeouts: { ...T }, ...options,
  });
  clients.push(client);
  return { server, client };
}

/** Runs `op`, which must reject; returns the error and how long it took. */
async function failure(op: () => Promise<unknown>, bound = 3000): Promise<{ err: SmtpError; elapsed: number }> {
  const start = performance.now();
  const outcome = await within(op().then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e })), bound, 'operation');
  const elapsed = performance.now() - start;
  if (outcome.ok) throw new Error(`expected a rejection, got ${JSON.stringify(outcome.v)}`);
  expect(outcome.e).toBeInstanceOf(SmtpError);
  return { err: outcome.e as SmtpError, elapsed };
}

/** The server's view: the connection ended (it does not end on its own after 'stall'). */
async function serverSawClose(server: ScriptedServer): Promise<ScriptResult> {
  const done = await within(server.done, 3000, 'server waiting for the client to close');
  expect(done.closedByClient).toBe(true);
  return done;
}

// ---- the step matrix ----------------------------------------------------------------------------

interface StepSpec {
  /** The script up to the point where the server must answer the step. */
  readonly prefix: Step[];
  readonly stage: SmtpStage;
  /** The code an endless continuation reply uses at this step. */
  readonly code: number;
  readonly options?: Record<string, unknown>;
  /** What the client does. */
  readonly drive: (c: SmtpClient) => Promise<unknown>;
  /** The timeout that applies while waiting at this step. */
  readonly timeout: number;
  /** The typed error for a 421 at this step. */
  readonly on421: (err: SmtpError) => void;
}

const send = (c: SmtpClient) => c.sendmail('a@example.org', 'b@example.org', 'Subject: t\r\n\r\nbody\r\n');
const ehloed: Step[] = ['S: 220 mx.example ESMTP', EHLO, 'S: 250 mx.example'];
const code421 = (Type: abstract new (...a: never[]) => SmtpResponseError) => (err: SmtpError) => {
  expect(err).toBeInstanceOf(Type);
  expect((err as SmtpResponseError).code).toBe(421);
};

const STEPS: Record<string, StepSpec> = {
  greeting: {
    prefix: [], stage: 'greeting', code: 220, drive: send, timeout: T.greeting, on421: code421(SmtpConnectError),
  },
  EHLO: {
    prefix: ['S: 220 mx.example ESMTP', EHLO], stage: 'helo', code: 250, drive: send, timeout: T.command, on421: code421(SmtpHeloError),
  },
  STARTTLS: {
    prefix: ['S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250 STARTTLS', 'C: STARTTLS'],
    stage: 'starttls', code: 220, options: { tls: 'required' }, drive: send, timeout: T.command, on421: code421(SmtpResponseError),
  },
  AUTH: {
    prefix: ['S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250 AUTH PLAIN', 'C: *'],
    stage: 'auth', code: 250, options: { allowInsecureAuth: true }, drive: (c) => c.login('user', 'secret-pass'),
    timeout: T.command, on421: code421(SmtpAuthenticationError),
  },
  MAIL: {
    prefix: [...ehloed, 'C: MAIL FROM:<a@example.org>'], stage: 'mail', code: 250, drive: send, timeout: T.command,
    on421: (err) => {
      code421(SmtpSenderRefusedError)(err);
      expect((err as SmtpSenderRefusedError).sender).toBe('a@example.org');
    },
  },
  RCPT: {
    prefix: [...ehloed, 'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>'],
    stage: 'rcpt', code: 250, drive: send, timeout: T.command,
    on421: (err) => {
      // smtplib: a 421 to RCPT closes and raises SMTPRecipientsRefused.
      expect(err).toBeInstanceOf(SmtpRecipientsRefusedError);
      expect((err as SmtpRecipientsRefusedError).recipients['b@example.org']?.code).toBe(421);
    },
  },
  DATA: {
    prefix: [...ehloed, 'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok', 'C: DATA'],
    stage: 'data', code: 354, drive: send, timeout: T.command, on421: code421(SmtpDataError),
  },
  'after .': {
    prefix: [
      ...ehloed, 'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok',
      'C: DATA', 'S: 354 go ahead', { body: true },
    ],
    stage: 'final-reply', code: 250, drive: send, timeout: T.data, on421: code421(SmtpDataError),
  },
};

/** After the fault nothing more may be sent: no RSET, no QUIT on a dead or 421'd connection. */
function nothingAfter(done: ScriptResult, spec: StepSpec): void {
  const expectedClientLines = spec.prefix.filter((s) => typeof s === 'string' && s.startsWith('C: ')).length;
  const bodyLines = spec.prefix.some((s) => typeof s === 'object' && 'body' in s) ? 3 : 0; // Subject, blank, body, '.'
  const extra = done.lines.slice(expectedClientLines + (bodyLines ? bodyLines + 1 : 0));
  expect(extra).toEqual([]);
}

describe.each(Object.entries(STEPS))('fault at %s', (_name, spec) => {
  it('server disconnects → SmtpServerDisconnectedError with the stage', async () => {
    const { server, client } = await session([...spec.prefix, 'close'], spec.options);
    const { err } = await failure(() => spec.drive(client));
    expect(err).toBeInstanceOf(SmtpServerDisconnectedError);
    expect(err.stage).toBe(spec.stage);
    expect(err.permanent).toBe(false);
    expect(client.connected).toBe(false);
    const done = await serverSawClose(server);
    expect(done.errors).toEqual([]);
  });

  it('server answers 421 → typed 421 error, closed by the client, no RSET/QUIT', async () => {
    const { server, client } = await session([...spec.prefix, 'S: 421 4.3.2 service shutting down', 'stall'], spec.options);
    const { err } = await failure(() => spec.drive(client));
    spec.on421(err);
    expect(err.stage).toBe(spec.stage);
    expect(err.permanent).toBe(false);
    expect(client.connected).toBe(false);
    const done = await serverSawClose(server);
    expect(done.errors).toEqual([]);
    nothingAfter(done, spec);
  });

  it('server sends garbage (not a reply) → SmtpProtocolError with the stage', async () => {
    const { server, client } = await session([...spec.prefix, 'S: hello, this is not SMTP at all', 'stall'], spec.options);
    const { err } = await failure(() => spec.drive(client));
    expect(err).toBeInstanceOf(SmtpProtocolError);
    expect((err as SmtpProtocolError).code).toBe(500);
    expect(err.stage).toBe(spec.stage);
    expect(client.connected).toBe(false);
    nothingAfter(await serverSawClose(server), spec);
  });

  it('server sends a 9 000-octet line → 500 response error (smtplib: "Line too long."), closed', async () => {
    const { server, client } = await session([...spec.prefix, { raw: `${spec.code} ${'x'.repeat(9000)}\r\n` }, 'stall'], spec.options);
    const { err } = await failure(() => spec.drive(client));
    expect(err).toBeInstanceOf(SmtpResponseError);
    expect((err as SmtpResponseError).code).toBe(500);
    expect(err.stage).toBe(spec.stage);
    expect(client.connected).toBe(false);
    nothingAfter(await serverSawClose(server), spec);
  });

  it('server sends endless continuation lines → SmtpProtocolError, client stops reading early', async () => {
    const { server, client } = await session([...spec.prefix, { endless: 'lines', line: `${spec.code}-and more` }], spec.options);
    const { err } = await failure(() => spec.drive(client));
    expect(err).toBeInstanceOf(SmtpProtocolError);
    expect(err.stage).toBe(spec.stage);
    expect(client.connected).toBe(false);
    const done = await serverSawClose(server);
    expect(done.errors).toEqual([]);
    // The client gave up after a bounded amount (64 KiB / 512 lines), not after the 32 MiB cap.
    expect(done.endlessSent).toBeLessThan(4 * 1024 * 1024);
  });

  it('server sends one line that never ends (no LF) → 500 response error, client stops reading early', async () => {
    const { server, client } = await session([...spec.prefix, { endless: 'bytes' }], spec.options);
    const { err } = await failure(() => spec.drive(client));
    expect(err).toBeInstanceOf(SmtpResponseError);
    expect((err as SmtpResponseError).code).toBe(500);
    expect(err.stage).toBe(spec.stage);
    expect(client.connected).toBe(false);
    const done = await serverSawClose(server);
    expect(done.errors).toEqual([]);
    expect(done.endlessSent).toBeLessThan(4 * 1024 * 1024);
  });

  it('server stalls → SmtpTimeoutError with the stage after that stage\'s timeout', async () => {
    const { server, client } = await session([...spec.prefix, 'stall'], spec.options);
    const { err, elapsed } = await failure(() => spec.drive(client));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    expect(err.stage).toBe(spec.stage);
    expect((err as SmtpTimeoutError).timeout).toBe(spec.timeout);
    expect(err.permanent).toBe(false);
    expect(elapsed).toBeGreaterThanOrEqual(spec.timeout - 5);
    expect(client.connected).toBe(false);
    nothingAfter(await serverSawClose(server), spec);
  });
});

// ---- the body itself (streamed, the server stops reading) -----------------------------------------

/** A body that is produced lazily and is far bigger than any socket buffer. */
function hugeBody(totalBytes = 64 * 1024 * 1024): Readable {
  const line = Buffer.from(`${'y'.repeat(1022)}\r\n`);
  const chunk = Buffer.concat(Array.from({ length: 64 }, () => line)); // 64 KiB
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= totalBytes) { this.push(null); return; }
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

const toBody: Step[] = [
  ...ehloed, 'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok', 'C: DATA', 'S: 354 go ahead',
];

describe('fault in the middle of a streamed body', () => {
  it('server stops reading and disconnects → SmtpServerDisconnectedError at stage "body"', async () => {
    const { server, client } = await session([...toBody, 'pause', { delay: 150 }, 'close']);
    const { err } = await failure(() => client.sendmail('a@example.org', 'b@example.org', hugeBody()));
    expect(err).toBeInstanceOf(SmtpServerDisconnectedError);
    expect(err.stage).toBe('body');
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });

  it('server says 421 and disconnects mid-body → SmtpServerDisconnectedError naming the 421, stage "body"', async () => {
    const { server, client } = await session([...toBody, 'pause', { delay: 100 }, 'S: 421 4.4.2 timeout exceeded', { delay: 50 }, 'close']);
    const { err } = await failure(() => client.sendmail('a@example.org', 'b@example.org', hugeBody()));
    expect(err).toBeInstanceOf(SmtpServerDisconnectedError);
    expect(err.message).toContain('421');
    expect(err.stage).toBe('body');
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });

  it('server stops reading (stall) → SmtpTimeoutError at stage "body" after the data timeout', async () => {
    // The server reads again later, only so that it can see the client hang up.
    const { server, client } = await session([...toBody, 'pause', { delay: 900 }, 'resume', 'stall']);
    const { err, elapsed } = await failure(() => client.sendmail('a@example.org', 'b@example.org', hugeBody()));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    expect(err.stage).toBe('body');
    expect((err as SmtpTimeoutError).timeout).toBe(T.data);
    expect(elapsed).toBeGreaterThanOrEqual(T.data - 5);
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });
});

describe('fault while a large in-memory body is written', () => {
  it('server stops reading and disconnects → SmtpServerDisconnectedError at stage "body" (the terminator never left), no unhandled rejection', async () => {
    const { server, client } = await session([...toBody, 'pause', { delay: 150 }, 'close']);
    const big = Buffer.alloc(32 * 1024 * 1024, 'z');
    const { err } = await failure(() => client.sendmail('a@example.org', 'b@example.org', big));
    expect(err).toBeInstanceOf(SmtpServerDisconnectedError);
    expect(client.connected).toBe(false);
    await serverSawClose(server);
    // 'final-reply' would tell a retry policy the message may have been delivered; it cannot have been.
    expect(err.stage).toBe('body');
  });
});

describe('BDAT (CHUNKING) faults', () => {
  const chunking: Step[] = [
    'S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250 CHUNKING',
    'C: MAIL FROM:<a@example.org>', 'S: 250 ok', 'C: RCPT TO:<b@example.org>', 'S: 250 ok',
  ];

  it('server disconnects while a large BDAT chunk is being written → SmtpServerDisconnectedError, no unhandled rejection', async () => {
    const { server, client } = await session([...chunking, 'C: *', 'close']);
    const { err } = await failure(() => client.sendmail('a@example.org', 'b@example.org', hugeBody(16 * 1024 * 1024)));
    expect(err).toBeInstanceOf(SmtpServerDisconnectedError);
    expect(['body', 'final-reply']).toContain(err.stage);
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });

  it('server refuses a BDAT chunk with 421 → typed 421 error, closed', async () => {
    const { server, client } = await session([...chunking, 'C: BDAT 7 LAST', { bytes: 7 }, 'S: 421 4.3.2 bye', 'stall']);
    const { err } = await failure(() => client.sendmail('a@example.org', 'b@example.org', 'hello\r\n'));
    expect(err).toBeInstanceOf(SmtpResponseError);
    expect((err as SmtpResponseError).code).toBe(421);
    expect(client.connected).toBe(false);
    const done = await serverSawClose(server);
    expect(done.lines).not.toContain('RSET');
  });

  it('one-shot pipelined BDAT with an envelope bigger than the socket buffers; server disconnects → typed error, no unhandled rejection', async () => {
    const { server, client } = await session([
      'S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250-PIPELINING', 'S: 250 CHUNKING',
      'pause', { delay: 150 }, 'close',
    ]);
    const rcpts = Array.from({ length: 150_000 }, (_, i) => `recipient-${String(i).padStart(6, '0')}@a-rather-long-domain.example.org`);
    const { err } = await failure(() => client.sendmail('a@example.org', rcpts, 'hello\r\n'), 10_000);
    expect(err).toBeInstanceOf(SmtpServerDisconnectedError);
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  }, 20_000);
});

// ---- pipelined groups: the stage of the reply that failed -----------------------------------------

describe('faults inside a pipelined MAIL/RCPT/DATA group', () => {
  const group: Step[] = [
    'S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250 PIPELINING',
    'C: MAIL FROM:<a@example.org>', 'C: RCPT TO:<b@example.org>', 'C: DATA',
  ];

  it.each([
    ['before the MAIL reply', 'mail', []],
    ['after the MAIL reply', 'rcpt', ['S: 250 ok']],
    ['after the RCPT reply', 'data', ['S: 250 ok', 'S: 250 ok']],
  ] as const)('disconnect %s → SmtpServerDisconnectedError at stage %s', async (_at, stage, replies) => {
    const { server, client } = await session([...group, ...replies, 'close']);
    const { err } = await failure(() => send(client));
    expect(err).toBeInstanceOf(SmtpServerDisconnectedError);
    expect(err.stage).toBe(stage);
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });

  it('garbage after the MAIL reply → SmtpProtocolError at stage rcpt', async () => {
    const { server, client } = await session([...group, 'S: 250 ok', 'S: ???', 'stall']);
    const { err } = await failure(() => send(client));
    expect(err).toBeInstanceOf(SmtpProtocolError);
    expect(err.stage).toBe('rcpt');
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });

  it('stall after the RCPT reply → SmtpTimeoutError at stage data', async () => {
    const { server, client } = await session([...group, 'S: 250 ok', 'S: 250 ok', 'stall']);
    const { err } = await failure(() => send(client));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    expect(err.stage).toBe('data');
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });
});

// ---- STARTTLS: the handshake itself ----------------------------------------------------------------

describe('faults in the STARTTLS handshake', () => {
  const to220: Step[] = ['S: 220 mx.example ESMTP', EHLO, 'S: 250-mx.example', 'S: 250 STARTTLS', 'C: STARTTLS', 'S: 220 2.0.0 ready'];

  it('220 and then no handshake → SmtpTimeoutError at stage starttls', async () => {
    const { server, client } = await session([...to220, 'stall'], { tls: 'required' });
    const { err, elapsed } = await failure(() => send(client));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    expect(err.stage).toBe('starttls');
    expect(elapsed).toBeGreaterThanOrEqual(T.command - 5);
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });

  it('220 and then a disconnect → SmtpServerDisconnectedError at stage starttls', async () => {
    const { server, client } = await session([...to220, 'close'], { tls: 'required' });
    const { err } = await failure(() => send(client));
    expect(err).toBeInstanceOf(SmtpServerDisconnectedError);
    expect(err.stage).toBe('starttls');
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });

  it('220 and then plaintext instead of a ServerHello → typed error at stage starttls, nothing sent in clear', async () => {
    const { server, client } = await session([...to220, { delay: 50 }, 'S: 250 this is not TLS', 'stall'], { tls: 'required' });
    const { err } = await failure(() => send(client));
    expect(err.stage).toBe('starttls');
    expect(client.connected).toBe(false);
    const done = await serverSawClose(server);
    expect(done.lines.filter((l) => /^(MAIL|AUTH|RCPT)/.test(l))).toEqual([]);
  });
});

// ---- the overall deadline, aborts --------------------------------------------------------------------

describe('timeouts.total', () => {
  it('a slow (never stalled) server: the deadline fires, typed with the stage in flight, socket closed', async () => {
    // Every reply comes within the per-command timeouts; the whole send does not fit in `total`.
    const { server, client } = await session([
      'S: 220 mx.example ESMTP',
      EHLO, { delay: 250 }, 'S: 250 mx.example',
      'C: MAIL FROM:<a@example.org>', { delay: 250 }, 'S: 250 ok',
      'C: RCPT TO:<b@example.org>', { delay: 250 }, 'S: 250 ok',
      'C: DATA', 'S: 354 go ahead', { body: true }, { delay: 600 }, 'S: 250 queued',
      'stall',
    ], { timeouts: { ...T, command: 400, data: 700, total: 1000 } });
    const { err, elapsed } = await failure(() => send(client));
    expect(err).toBeInstanceOf(SmtpTimeoutError);
    expect((err as SmtpTimeoutError).timeout).toBe(1000);
    expect(elapsed).toBeGreaterThanOrEqual(995);
    expect(elapsed).toBeLessThan(1400);
    expect(client.connected).toBe(false);
    await serverSawClose(server);
    // The body's terminator was sent and its reply never came: the message may have been
    // delivered. errors.ts reserves 'final-reply' for exactly this; a retry policy reads it.
    expect(err.stage).toBe('final-reply');
  });

  it('an operation that finishes in time leaves no deadline timer behind', async () => {
    const { server, client } = await session([
      'S: 220 mx.example ESMTP', EHLO, { delay: 30 }, 'S: 250 mx.example',
      'C: MAIL FROM:<a@example.org>', { delay: 30 }, 'S: 250 ok',
      'C: RCPT TO:<b@example.org>', 'S: 250 ok',
      'C: DATA', 'S: 354 go ahead', { body: true }, 'S: 250 queued',
    ], { timeouts: { ...T, total: 5000 } });
    const result = await send(client);
    expect(result.response.message).toBe('queued');
    client.close();
    expect((await server.done).errors).toEqual([]);
  });
});

describe('AbortSignal', () => {
  async function* slowBody(onChunk: (n: number) => void) {
    for (let i = 0; i < 50; i++) {
      onChunk(i);
      yield Buffer.from(`line ${i}\r\n`);
      await sleep(20);
    }
  }

  it('abort in the middle of a body → SmtpAbortError, socket closed, promptly', async () => {
    const ac = new AbortController();
    const { server, client } = await session([...toBody, 'stall'], { signal: ac.signal, timeouts: { ...T, data: 5000 } });
    let abortedAt = 0;
    const { err } = await failure(() => client.sendmail('a@example.org', 'b@example.org', slowBody((i) => {
      if (i === 5) { abortedAt = performance.now(); ac.abort(); }
    })));
    expect(performance.now() - abortedAt).toBeLessThan(200);
    expect(err).toBeInstanceOf(SmtpAbortError);
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });

  it('abort while waiting for a reply → SmtpAbortError, socket closed', async () => {
    const ac = new AbortController();
    const { server, client } = await session([...ehloed, 'C: MAIL FROM:<a@example.org>', 'stall'], { signal: ac.signal, timeouts: { ...T, command: 5000 } });
    realSetTimeout(() => ac.abort(), 100);
    const { err, elapsed } = await failure(() => send(client));
    expect(err).toBeInstanceOf(SmtpAbortError);
    expect(elapsed).toBeLessThan(1000);
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });

  it('the abort error is recognisable the standard way: name "AbortError"', async () => {
    const ac = new AbortController();
    const { server, client } = await session([...toBody, 'stall'], { signal: ac.signal, timeouts: { ...T, data: 5000 } });
    const { err } = await failure(() => client.sendmail('a@example.org', 'b@example.org', slowBody((i) => { if (i === 3) ac.abort(); })));
    expect(err).toBeInstanceOf(SmtpError);
    expect(err.name).toBe('AbortError');
    await serverSawClose(server);
  });

  it('already aborted → rejects before connecting', async () => {
    const ac = new AbortController();
    ac.abort();
    const { server, client } = await session(['S: 220 x', 'stall'], { signal: ac.signal });
    const { err } = await failure(() => send(client));
    expect(err).toBeInstanceOf(SmtpAbortError);
    await sleep(50);
    expect(server.accepted()).toBe(0);
    expect(client.connected).toBe(false);
  });
});

// ---- odd but valid framing ---------------------------------------------------------------------------

describe('framing the client must cope with', () => {
  it('a greeting sent one byte at a time', async () => {
    const { server, client } = await session([
      { drip: '220 mx.example ESMTP slow\r\n', every: 3 },
      EHLO, { drip: '250-mx.example\r\n250 8BITMIME\r\n', every: 1 },
      'C: NOOP', 'S: 250 ok',
    ]);
    const greeting = await client.connect();
    expect(greeting).toEqual({ code: 220, lines: ['mx.example ESMTP slow'], message: 'mx.example ESMTP slow' });
    await client.ehlo();
    expect(client.hasExtension('8bitmime')).toBe(true);
    expect((await client.noop()).code).toBe(250);
    client.close();
    expect((await server.done).errors).toEqual([]);
  });

  it('replies split in odd places (inside the code, between CR and LF, across pipelined replies)', async () => {
    const { server, client } = await session([
      { raw: '2' }, { delay: 20 }, { raw: '20 mx' }, { delay: 20 }, { raw: '.example\r' }, { delay: 20 }, { raw: '\n' },
      EHLO,
      { raw: '25' }, { delay: 20 }, { raw: '0-mx.example\r' }, { delay: 20 }, { raw: '\n250-PIPE' }, { delay: 20 },
      { raw: 'LINING\r\n250 SIZE 1000' }, { delay: 20 }, { raw: '0\r\n' },
      'C: MAIL FROM:<a@example.org> SIZE=20', 'C: RCPT TO:<b@example.org>', 'C: DATA',
      { raw: '250 2.1.0 ok\r\n2' }, { delay: 20 }, { raw: '50 2.1.5 ok\r\n354-go\r' }, { delay: 20 }, { raw: '\n354 ahead\r\n' },
      { body: true },
      { raw: '250-queued' }, { delay: 20 }, { raw: '\r\n250 as X1\r' }, { delay: 20 }, { raw: '\n' },
    ]);
    const result = await send(client);
    expect(client.features.get('size')).toBe('10000');
    expect(client.hasExtension('pipelining')).toBe(true);
    expect(result.response).toEqual({ code: 250, lines: ['queued', 'as X1'], message: 'queued\nas X1' });
    client.close();
    expect((await server.done).errors).toEqual([]);
  });

  it.each([
    ['bare LF', '\n'],
    ['CRLF', '\r\n'],
  ])('a whole session with %s line ends in every reply', async (_name, eol) => {
    const r = (text: string): Step => ({ raw: `${text}${eol}` });
    const { server, client } = await session([
      r('220 mx.example ESMTP'), EHLO, r('250-mx.example'), r('250-PIPELINING'), r('250 DSN'),
      'C: MAIL FROM:<a@example.org>', 'C: RCPT TO:<b@example.org>', 'C: RCPT TO:<c@example.org>', 'C: DATA',
      r('250 ok'), r('550 5.1.1 no c'), r('250 ok'), r('354 go'),
      { body: true }, r('250 2.0.0 queued'),
    ]);
    const result = await client.sendmail('a@example.org', ['b@example.org', 'c@example.org'], 'x');
    expect(result.accepted).toEqual(['c@example.org']);
    expect(result.refused['b@example.org']).toEqual({ code: 550, enhancedCode: '5.1.1', lines: ['5.1.1 no c'], message: '5.1.1 no c' });
    expect(result.response.message).toBe('2.0.0 queued');
    expect(client.hasExtension('dsn')).toBe(true);
    client.close();
    expect((await server.done).errors).toEqual([]);
  });

  it('mixed CRLF and bare LF inside one multi-line reply', async () => {
    const { server, client } = await session([
      { raw: '220 x\n' }, EHLO, { raw: '250-mx.example\r\n250-SIZE 5\n250 8BITMIME\r\n' }, 'C: NOOP', 'S: 250 ok',
    ]);
    await client.connect();
    const r = await client.ehlo();
    expect(r.lines).toEqual(['mx.example', 'SIZE 5', '8BITMIME']);
    expect(client.features.get('size')).toBe('5');
    await client.noop();
    client.close();
    expect((await server.done).errors).toEqual([]);
  });
});

describe('line limit is a protocol error (errors.ts: SmtpProtocolError covers "a line over the limit")', () => {
  it('a 9 000-octet reply line → SmtpProtocolError with code 500', async () => {
    const { server, client } = await session([...ehloed, 'C: NOOP', { raw: `250 ${'x'.repeat(9000)}\r\n` }, 'stall']);
    await client.connect();
    await client.ehlo();
    const { err } = await failure(() => client.noop());
    expect(err).toBeInstanceOf(SmtpProtocolError);
    expect((err as SmtpProtocolError).code).toBe(500);
    expect(client.connected).toBe(false);
    await serverSawClose(server);
  });
});

describe('after everything above', () => {
  it('no ref\'d Timeout handle is left over (the process could exit)', async () => {
    await sleep(300); // the scripted servers' own end-of-script pauses (100 ms)
    expect(refTimeouts()).toBeLessThanOrEqual(baselineTimeouts);
  });
});
