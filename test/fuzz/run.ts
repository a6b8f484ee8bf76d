/**
 * Fuzzing the reply parser and whole sessions (fast-check). The properties live here so the CI test
 * (`test/client/fuzz.test.ts`, fixed seed, few runs) and the longer on-demand run share them:
 *
 *   npx tsx test/fuzz/run.ts [runs] [seed]
 *
 * runs: session cases (default 5 000; the parser properties get 20× as many); seed: default random,
 * printed so a failure can be replayed.
 *
 * Properties:
 *  1. parser, arbitrary bytes split arbitrarily: replies come out or an SmtpError is thrown — never
 *     another exception, never a reply that breaks the SmtpReply invariants, never slow;
 *  2. parser, replies generated from a model (code, lines, separators, enhanced codes, UTF-8) and split
 *     anywhere (also inside a UTF-8 sequence or a CRLF) round-trip exactly;
 *  3. parser: the outcome does not depend on how the bytes were split;
 *  4. session: a server answering every command with a random reply (any code class, multi-line,
 *     garbage, a line over the limit, a disconnect, a stall) → `sendmail` (after an optional login)
 *     settles within a bound, resolves with a sane result or rejects with an SmtpError, and after a
 *     rejection that ended the connection `client.connected` is false; no unhandled rejection.
 */
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { SmtpClient, createReplyParser } from '../../index.js';
import {
  SmtpError, SmtpProtocolError, SmtpRecipientsRefusedError, SmtpResponseError, SmtpServerDisconnectedError,
  SmtpTimeoutError,
} from '../../core/errors.js';
import { DEFAULT_REPLY_LIMITS, type ReplyLimits, type SmtpReply } from '../../core/protocol/reply.js';

// ---- 1-3: the reply parser ---------------------------------------------------------------------------

export interface ParseOutcome {
  readonly replies: SmtpReply[];
  /** The error thrown, if any (the parser is unusable after it). */
  readonly error?: unknown;
}

/** Feeds `chunks` to a fresh parser; stops at the first throw. */
export function parseChunks(chunks: readonly Buffer[], limits: ReplyLimits = DEFAULT_REPLY_LIMITS): ParseOutcome {
  const replies: SmtpReply[] = [];
  const parser = createReplyParser((r) => replies.push(r), limits);
  for (const c of chunks) {
    try {
      parser.push(c);
    } catch (error) {
      return { replies, error };
    }
  }
  return { replies };
}

/** Splits `bytes` at the given cut points (any numbers; taken modulo the length, sorted). */
export function splitAt(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  if (bytes.length === 0) return [bytes];
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    out.push(bytes.subarray(start, p)); // empty chunks too: a push of nothing must be harmless
    start = p;
  }
  out.push(bytes.subarray(start));
  return out;
}

const smtpFragment = fc.constantFrom(
  '250', '250-', '250 ', '220 ', '354 ', '421 ', '5', '0', '9', '199 ', '600 ', '999-', '25', '2.1.0 ', '5.7.1 ',
  '\r\n', '\n', '\r', '\r\r\n', ' ', '-', 'x', 'ok', 'é', '日本', '\0', '\x7f', '\xff', '\t',
);

/** Bytes that are often almost SMTP, sometimes anything. */
export const bytesArb: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)) },
  { weight: 3, arbitrary: fc.array(fc.oneof(smtpFragment, fc.string({ maxLength: 12 })), { maxLength: 120 }).map((p) => Buffer.from(p.join(''), 'utf8')) },
  {
    weight: 1,
    // Long runs: lines near and over the limits, many continuation lines.
    arbitrary: fc.tuple(fc.constantFrom('250-', '250 ', 'x', '250-ab\r\n', '220-\n'), fc.integer({ min: 1, max: 3000 }), fc.constantFrom('', '\r\n', '\n', '250 end\r\n'))
      .map(([unit, n, tail]) => Buffer.from(unit.repeat(n) + tail, 'utf8')),
  },
);

export const limitsArb: fc.Arbitrary<ReplyLimits> = fc.oneof(
  fc.constant(DEFAULT_REPLY_LIMITS),
  fc.record({
    maxLineLength: fc.integer({ min: 3, max: 64 }),
    maxReplyLength: fc.integer({ min: 8, max: 400 }),
    maxReplyLines: fc.integer({ min: 1, max: 12 }),
  }),
);

const cutsArb = fc.array(fc.nat({ max: 100_000 }), { maxLength: 40 });

/** Invariants every emitted reply must satisfy. */
export function checkReply(r: SmtpReply): void {
  if (!Number.isInteger(r.code) || r.code < 200 || r.code > 599) throw new Error(`code out of range: ${r.code}`);
  if (r.lines.length === 0) throw new Error('a reply without lines');
  for (const l of r.lines) if (l.includes('\n')) throw new Error(`a line with LF: ${JSON.stringify(l)}`);
  if (r.message !== r.lines.join('\n')) throw new Error('message is not lines joined with \\n');
  if (r.enhancedCode !== undefined && (r.enhancedCode[0] !== String(r.code)[0] || !r.lines[0]!.startsWith(r.enhancedCode))) {
    throw new Error(`enhanced code ${r.enhancedCode} does not belong to ${r.code} ${r.lines[0]}`);
  }
}

/** 1: arbitrary bytes, arbitrary splits. */
export const parserArbitraryBytes = fc.property(bytesArb, cutsArb, limitsArb, (bytes, cuts, limits) => {
  const start = performance.now();
  const out = parseChunks(splitAt(bytes, cuts), limits);
  const ms = performance.now() - start;
  if (out.error !== undefined && !(out.error instanceof SmtpError)) {
    throw new Error(`untyped exception from the parser: ${String(out.error)}`);
  }
  if (out.error instanceof SmtpResponseError && out.error.code !== 500) throw new Error(`parser error with code ${out.error.code}`);
  for (const r of out.replies) checkReply(r);
  if (ms > 1000) throw new Error(`parsing ${bytes.length} octets took ${ms.toFixed(0)} ms`);
});

// The model: text with no digits (so an enhanced code is only where the model put one), some UTF-8.
const textChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;:_-()<>@[]=+/*é日本'.split(''));
const textArb = fc.string({ unit: textChar, maxLength: 40 });

interface ModelReply {
  readonly code: number;
  readonly enhanced?: string;
  readonly texts: readonly string[];
  readonly eols: readonly ('\r\n' | '\n')[];
  /** For an empty last line: '250' or '250 '. */
  readonly bareLast: boolean;
}

const modelReplyArb: fc.Arbitrary<ModelReply> = fc.record({
  code: fc.integer({ min: 200, max: 599 }),
  enhanced: fc.option(fc.tuple(fc.constantFrom(2, 4, 5), fc.integer({ min: 0, max: 999 }), fc.integer({ min: 0, max: 999 })).map(([a, b, c]) => `${a}.${b}.${c}`), { nil: undefined }),
  texts: fc.array(textArb, { minLength: 1, maxLength: 6 }),
  eols: fc.array(fc.constantFrom('\r\n' as const, '\n' as const), { minLength: 6, maxLength: 6 }),
  bareLast: fc.boolean(),
});

export function renderModel(m: ModelReply): string {
  const texts = m.texts.map((t, i) => (i === 0 && m.enhanced ? `${m.enhanced}${t ? ` ${t}` : ''}` : t));
  return texts.map((t, i) => {
    const last = i === texts.length - 1;
    const head = `${m.code}${last ? (t === '' && m.bareLast ? '' : ' ') : '-'}`;
    return `${head}${t}${m.eols[i]}`;
  }).join('');
}

export function expectedReply(m: ModelReply): SmtpReply {
  const lines = m.texts.map((t, i) => (i === 0 && m.enhanced ? `${m.enhanced}${t ? ` ${t}` : ''}` : t));
  const message = lines.join('\n');
  const enhanced = m.enhanced && m.enhanced[0] === String(m.code)[0] ? m.enhanced : undefined;
  return enhanced ? { code: m.code, enhancedCode: enhanced, lines, message } : { code: m.code, lines, message };
}

/** 2: model replies round-trip exactly, however they are split. */
export const parserModelRoundTrip = fc.property(fc.array(modelReplyArb, { minLength: 1, maxLength: 8 }), cutsArb, (models, cuts) => {
  const bytes = Buffer.from(models.map(renderModel).join(''), 'utf8');
  const out = parseChunks(splitAt(bytes, cuts));
  if (out.error !== undefined) throw new Error(`valid input refused: ${String(out.error)}`);
  const want = models.map(expectedReply);
  const got = JSON.stringify(out.replies);
  if (got !== JSON.stringify(want)) throw new Error(`round trip differs:\n got ${got}\nwant ${JSON.stringify(want)}`);
});

function describeOutcome(o: ParseOutcome): string {
  return JSON.stringify({ replies: o.replies, error: o.error === undefined ? null : `${(o.error as Error).name}` });
}

/** Lines within two octets of the line limit, ended by CRLF or LF (where off-by-ones live). */
const nearLimitArb = fc.record({
  max: fc.integer({ min: 4, max: 64 }),
  delta: fc.integer({ min: -2, max: 2 }),
  eol: fc.constantFrom('\r\n', '\n'),
  reps: fc.integer({ min: 1, max: 3 }),
}).map(({ max, delta, eol, reps }) => ({
  limits: { maxLineLength: max, maxReplyLength: 100_000, maxReplyLines: 100 } as ReplyLimits,
  bytes: Buffer.from(`250 ${'x'.repeat(Math.max(0, max - 4 + delta))}${eol}`.repeat(reps)),
}));

const splitCaseArb = fc.oneof(
  { weight: 3, arbitrary: fc.record({ bytes: bytesArb, limits: limitsArb }) },
  { weight: 1, arbitrary: nearLimitArb },
);

/** 3: the outcome does not depend on the split. */
export const parserSplitIndependent = fc.property(splitCaseArb, cutsArb, ({ bytes, limits }, cuts) => {
  const whole = describeOutcome(parseChunks([bytes], limits));
  const split = describeOutcome(parseChunks(splitAt(bytes, cuts), limits));
  if (whole !== split) throw new Error(`split changes the outcome:\nwhole ${whole}\nsplit ${split}`);
});

// ---- 4: whole sessions against a random server ----------------------------------------------------

export type Action =
  | { readonly kind: 'ok'; readonly caps: readonly string[]; readonly eol: string }
  | { readonly kind: 'reply'; readonly code: number; readonly lines: readonly string[]; readonly eol: string }
  | { readonly kind: 'garbage'; readonly text: string }
  | { readonly kind: 'long' }
  | { readonly kind: 'disconnect' }
  | { readonly kind: 'stall' };

const CAPS = ['PIPELINING', 'CHUNKING', '8BITMIME', 'SIZE 100000', 'DSN', 'SMTPUTF8', 'AUTH PLAIN LOGIN CRAM-MD5', 'STARTTLS', 'ENHANCEDSTATUSCODES'];
const eolArb = fc.constantFrom('\r\n', '\n');

export const actionArb: fc.Arbitrary<Action> = fc.oneof(
  { weight: 40, arbitrary: fc.record({ kind: fc.constant('ok' as const), caps: fc.subarray(CAPS), eol: eolArb }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('reply' as const),
      code: fc.constantFrom(220, 221, 235, 250, 251, 252, 334, 354, 421, 450, 451, 452, 454, 500, 501, 502, 503, 530, 535, 550, 552, 553, 554),
      lines: fc.array(fc.string({ unit: textChar, maxLength: 20 }), { minLength: 1, maxLength: 3 }),
      eol: eolArb,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('garbage' as const), text: fc.constantFrom('hello', '25O ok', '2500 x', '1', '600 no', '250+x', '') }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'long' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'disconnect' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'stall' as const }) },
);

export interface SessionCase {
  readonly actions: readonly Action[];
  readonly tls: 'none' | 'opportunistic';
  readonly login: boolean;
  readonly recipients: number;
  readonly body: 'string' | 'buffer' | 'stream';
  readonly chunking: 'auto' | 'never';
}

export const sessionCaseArb: fc.Arbitrary<SessionCase> = fc.record({
  actions: fc.array(actionArb, { minLength: 1, maxLength: 14 }),
  tls: fc.constantFrom('none' as const, 'opportunistic' as const),
  login: fc.boolean(),
  recipients: fc.integer({ min: 1, max: 3 }),
  body: fc.constantFrom('string' as const, 'buffer' as const, 'stream' as const),
  chunking: fc.constantFrom('auto' as const, 'never' as const),
});

interface RandomServer {
  readonly port: number;
  /** True once the server closed the connection on purpose. */
  readonly disconnected: () => boolean;
  close(): Promise<void>;
}

/** A server that answers whatever the client sends with the next scripted action. */
async function randomServer(actions: readonly Action[]): Promise<RandomServer> {
  let disconnected = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    let next = 0;
    let buffer = Buffer.alloc(0);
    let mode: 'line' | 'body' | { bdat: number } = 'line';
    let stalled = false;
    let lastCommand = '';
    const act = (command: string): void => {
      if (stalled || socket.destroyed) return;
      const a = actions[next++] ?? { kind: 'disconnect' as const };
      const verb = command.split(' ')[0]!.toUpperCase();
      switch (a.kind) {
        case 'ok': {
          if (command === '<greeting>') socket.write(`220 fuzz.example ESMTP${a.eol}`);
          else if (verb === 'EHLO' || verb === 'LHLO') {
            const lines = ['fuzz.example', ...a.caps];
            socket.write(lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}${a.eol}`).join(''));
          } else if (verb === 'DATA') {
            socket.write(`354 go ahead${a.eol}`);
            mode = 'body';
          } else if (verb === 'AUTH') socket.write(`235 2.7.0 ok${a.eol}`);
          else if (verb === 'STARTTLS') socket.write(`454 4.7.0 no TLS here${a.eol}`);
          else if (verb === 'QUIT') { socket.write(`221 bye${a.eol}`); socket.end(); }
          else socket.write(`250 2.0.0 ok${a.eol}`);
          break;
        }
        case 'reply': {
          socket.write(a.lines.map((l, i) => `${a.code}${i === a.lines.length - 1 ? ' ' : '-'}${l}${a.eol}`).join(''));
          if (verb === 'DATA' && a.code === 354) mode = 'body';
          if (a.code === 421) { disconnected = true; socket.end(); }
          break;
        }
        case 'garbage': socket.write(`${a.text}\r\n`); break;
        case 'long': socket.write(`250 ${'x'.repeat(9000)}\r\n`); break;
        case 'disconnect': disconnected = true; socket.destroy(); break;
        case 'stall': stalled = true; break;
      }
    };
    const pump = (): void => {
      for (;;) {
        if (typeof mode === 'object') {
          if (buffer.length < mode.bdat) return;
          buffer = buffer.subarray(mode.bdat);
          mode = 'line';
          act(lastCommand);
          continue;
        }
        const i = buffer.indexOf(0x0a);
        if (i === -1) return;
        const line = buffer.subarray(0, i).toString('latin1').replace(/\r$/, '');
        buffer = buffer.subarray(i + 1);
        if (mode === 'body') {
          if (line === '.') { mode = 'line'; act('<end of data>'); }
          continue;
        }
        lastCommand = line;
        const bdat = /^BDAT (\d+)/i.exec(line);
        if (bdat) { mode = { bdat: Number(bdat[1]) }; continue; }
        act(line);
      }
    };
    socket.on('data', (c: Buffer) => { buffer = Buffer.concat([buffer, c]); pump(); });
    act('<greeting>');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    disconnected: () => disconnected,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

const SESSION_TIMEOUT = 120;
/** A session must settle within this (a few stage timeouts at most). */
export const SESSION_BOUND = 4000;

function fatal(err: SmtpError): boolean {
  if (err instanceof SmtpServerDisconnectedError || err instanceof SmtpTimeoutError || err instanceof SmtpProtocolError) return true;
  if (err instanceof SmtpResponseError && err.code === 421) return true;
  if (err instanceof SmtpRecipientsRefusedError && Object.values(err.recipients).some((r) => r.code === 421)) return true;
  return false;
}

const unhandled: unknown[] = [];
let listening = 0;
const onUnhandled = (r: unknown): void => { unhandled.push(r); };

/** Registers the unhandled-rejection watch for the duration of a run. */
export function watchUnhandled(): () => unknown[] {
  if (listening++ === 0) process.on('unhandledRejection', onUnhandled);
  unhandled.length = 0;
  return () => {
    if (--listening === 0) process.off('unhandledRejection', onUnhandled);
    return unhandled.splice(0);
  };
}

/** Outcome counts of the session runs (for the report of a long run). */
export const sessionStats = new Map<string, number>();
function count(key: string): void {
  sessionStats.set(key, (sessionStats.get(key) ?? 0) + 1);
}

export async function runSessionCase(c: SessionCase): Promise<void> {
  const server = await randomServer(c.actions);
  const client = new SmtpClient({
    host: '127.0.0.1', port: server.port, localHostname: 'client.test', tls: c.tls, allowInsecureAuth: true, chunking: c.chunking,
    timeouts: { connect: 1000, greeting: SESSION_TIMEOUT, command: SESSION_TIMEOUT, data: SESSION_TIMEOUT },
  });
  const rcpts = Array.from({ length: c.recipients }, (_, i) => `r${i}@example.org`);
  const text = 'Subject: fuzz\r\n\r\nline one\r\n.dot line\r\n';
  const body = c.body === 'string' ? text : c.body === 'buffer' ? Buffer.from(text) : Readable.from([Buffer.from(text.slice(0, 10)), Buffer.from(text.slice(10))]);
  const op = (async () => {
    if (c.login) {
      try {
        await client.login('user', 'secret-pass');
      } catch (err) {
        if (!(err instanceof SmtpError)) throw err;
        if (!client.connected) throw err; // nothing more to try on a dead session
      }
    }
    return client.sendmail('a@example.org', rcpts, body);
  })();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<'hung'>((r) => { timer = setTimeout(() => r('hung'), SESSION_BOUND); });
  try {
    const outcome = await Promise.race([op.then((v) => ({ ok: true as const, v }), (e: unknown) => ({ ok: false as const, e })), bound]);
    if (outcome === 'hung') throw new Error(`session did not settle within ${SESSION_BOUND} ms`);
    count(outcome.ok ? 'resolved' : `${(outcome.e as Error)?.name ?? 'thrown'}${(outcome.e as SmtpError)?.stage ? ` @${(outcome.e as SmtpError).stage}` : ''}`);
    if (outcome.ok) {
      const r = outcome.v;
      if (r.response.code !== 250) throw new Error(`resolved with a final reply ${r.response.code}`);
      if (r.accepted.length === 0 || !r.accepted.every((a) => rcpts.includes(a))) throw new Error(`bad accepted list ${JSON.stringify(r.accepted)}`);
      if (r.accepted.length + Object.keys(r.refused).length !== rcpts.length) throw new Error('accepted + refused is not every recipient');
    } else {
      const err = outcome.e;
      if (!(err instanceof SmtpError)) throw new Error(`untyped rejection: ${String((err as Error)?.stack ?? err)}`);
      if (fatal(err) && client.connected) throw new Error(`client.connected is true after ${err.name}: ${err.message}`);
      if (server.disconnected() && err instanceof SmtpServerDisconnectedError && client.connected) {
        throw new Error('client.connected is true after the server disconnected');
      }
    }
  } finally {
    clearTimeout(timer);
    client.close();
    await server.close();
  }
}

export const sessionProperty = fc.asyncProperty(sessionCaseArb, runSessionCase);

// ---- the on-demand run ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 5000);
  const seed = Number(process.argv[3] ?? Math.floor(Math.random() * 2 ** 31));
  if (!Number.isInteger(runs) || runs <= 0) throw new Error('usage: npx tsx test/fuzz/run.ts [runs] [seed]');
  console.log(`seed ${seed}`);
  let total = 0;
  const started = performance.now();
  const check = async (name: string, prop: fc.IProperty<never> | fc.IAsyncProperty<never>, numRuns: number) => {
    const t = performance.now();
    const details = await fc.check(prop as fc.IAsyncProperty<never>, { seed, numRuns });
    total += details.numRuns;
    const took = ((performance.now() - t) / 1000).toFixed(1);
    if (details.failed) {
      console.log(`${name}: FAILED after ${details.numRuns} cases (${took} s)`);
      console.log(fc.defaultReportMessage(details));
      process.exitCode = 1;
    } else {
      console.log(`${name}: ${details.numRuns} cases passed (${took} s)`);
    }
  };
  await check('parser: arbitrary bytes', parserArbitraryBytes as never, runs * 20);
  await check('parser: model round trip', parserModelRoundTrip as never, runs * 20);
  await check('parser: split independence', parserSplitIndependent as never, runs * 20);
  const done = watchUnhandled();
  await check('session: random server', sessionProperty as never, runs);
  const stray = done();
  console.log('session outcomes:');
  for (const [k, v] of [...sessionStats].sort((a, b) => b[1] - a[1])) console.log(`  ${String(v).padStart(6)}  ${k}`);
  if (stray.length > 0) {
    console.log(`unhandled rejections during the session runs: ${stray.length}`);
    for (const s of stray.slice(0, 5)) console.log(`  ${(s as Error)?.stack ?? String(s)}`);
    process.exitCode = 1;
  }
  console.log(`${total} fuzz cases in ${((performance.now() - started) / 1000).toFixed(1)} s (seed ${seed})`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err);
    process.exit(2);
  });
}
