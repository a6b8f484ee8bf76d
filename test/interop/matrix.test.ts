/**
 * The scenario matrix: mailstage's SmtpClient against real servers (Postfix with Dovecot SASL,
 * Dovecot LMTP, aiosmtpd, Postfix smtp-sink). Each scenario checks what the server stored, not only
 * that it said 250. At the end the matrix is printed (server × scenario → pass/fail/not supported).
 */
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpClient, type TranscriptEvent } from '../../index.js';
import lmtp from '../../plugins/lmtp/index.js';
import authPlain from '../../plugins/auth-plain/index.js';
import authLogin from '../../plugins/auth-login/index.js';
import authCramMd5 from '../../plugins/auth-cram-md5/index.js';
import dsn from '../../plugins/dsn/index.js';
import { SmtpNotSupportedError } from '../../core/errors.js';
import { available as aiosmtpdAvailable, startAiosmtpd, AIOSMTPD_USER, AIOSMTPD_PASSWORD, type AiosmtpdServer } from './servers/aiosmtpd.js';
import { available as dovecotAvailable, quotaAvailable, startDovecot, type DovecotServer } from './servers/dovecot.js';
import { available as postfixAvailable, startPostfix, type PostfixServer } from './servers/postfix.js';
import { available as sinkAvailable, startSmtpSink, type SmtpSinkServer } from './servers/smtp-sink.js';

type Cell = 'pass' | 'fail' | 'n/a';
const matrix = new Map<string, Map<string, Cell>>();
const SCENARIOS = [
  'plain', 'STARTTLS', 'implicit TLS', 'AUTH PLAIN', 'AUTH LOGIN', 'AUTH CRAM-MD5', 'pipelining', 'BDAT', 'DSN',
  'SMTPUTF8 address', '8-bit body', '50 MB body', '100 messages / 1 connection', 'smuggling variants', 'LMTP partial failure',
] as const;
type Scenario = (typeof SCENARIOS)[number];

function mark(server: string, scenario: Scenario, cell: Cell): void {
  if (!matrix.has(server)) matrix.set(server, new Map());
  matrix.get(server)!.set(scenario, cell);
}
function notSupported(server: string, ...scenarios: Scenario[]): void {
  for (const s of scenarios) mark(server, s, 'n/a');
}
/** A test that records its outcome in the matrix. */
function scenario(server: string, name: Scenario, fn: () => Promise<void>, timeout?: number): void {
  it(`${server}: ${name}`, async () => {
    try {
      await fn();
      mark(server, name, 'pass');
    } catch (e) {
      mark(server, name, 'fail');
      throw e;
    }
  }, timeout);
}

afterAll(() => {
  const servers = [...matrix.keys()];
  if (servers.length === 0) return;
  const rows = SCENARIOS.map((s) => `| ${s} | ${servers.map((srv) => matrix.get(srv)!.get(s) ?? '—').join(' | ')} |`);
  console.log(['', `| scenario | ${servers.join(' | ')} |`, `|---|${servers.map(() => '---').join('|')}|`, ...rows].join('\n'));
});

const lf = (s: string) => s.replace(/\r\n/g, '\n');
const SMUGGLE = 'Subject: smuggling\r\n\r\nbefore\n.\nMAIL FROM:<evil@x>\r.\rRCPT TO:<evil@x>\n.\r\nDATA\r\n.\rafter\r\n';

function client(port: number, extra: Record<string, unknown> = {}): SmtpClient {
  return new SmtpClient({ host: '127.0.0.1', port, localHostname: 'client.example.test', timeouts: { command: 30_000, data: 120_000 }, ...extra });
}

function bigBody(megabytes: number): { body: Readable; size: number } {
  const line = Buffer.from(`.${'y'.repeat(77)}\r\n`);
  const chunk = Buffer.concat(Array.from({ length: 800 }, () => line));
  const count = Math.ceil((megabytes * 1024 * 1024) / chunk.length);
  let i = 0;
  const header = Buffer.from('Subject: big\r\n\r\n');
  return {
    size: header.length + count * chunk.length,
    body: new Readable({
      read() {
        if (i === 0) this.push(header);
        if (i++ < count) this.push(chunk); else this.push(null);
      },
    }),
  };
}

// ---- Postfix -----------------------------------------------------------------------------------

describe.skipIf(!postfixAvailable() || !dovecotAvailable())('Postfix (with Dovecot SASL)', () => {
  const S = 'Postfix';
  let pf: PostfixServer;
  const to = (local: string) => `${local}@example.test`;
  /** The delivered copies whose content matches, once `count` of them have arrived. */
  async function delivered(match: string | RegExp, count = 1) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const found = (await pf.deliveredMessages()).filter((m) => (typeof match === 'string' ? m.content.includes(match) : match.test(m.content.toString())));
      if (found.length >= count) return found;
      if (Date.now() > deadline) throw new Error(`Postfix delivered ${found.length}/${count} messages matching ${match}\n${await pf.logTail(20)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  beforeAll(async () => {
    pf = await startPostfix();
  });
  afterAll(async () => {
    await pf?.stop();
  });

  scenario(S, 'plain', async () => {
    await using c = client(pf.port);
    const r = await c.sendmail('sender@example.test', [to('alice'), pf.unknownRecipient], 'Subject: plain\r\n\r\nhello\r\n');
    expect(r.accepted).toEqual([to('alice')]);
    expect(r.refused[pf.unknownRecipient]).toMatchObject({ code: 550, enhancedCode: '5.1.1' });
    const [got] = await delivered('Subject: plain');
    expect(lf(got!.content.toString())).toBe('Subject: plain\n\nhello\n');
    expect(got!.originalRecipient).toBe(to('alice'));
  });

  scenario(S, 'STARTTLS', async () => {
    await using c = client(pf.port, { tls: 'required', tlsOptions: { ca: pf.ca } });
    await c.sendmail('sender@example.test', to('bob'), 'Subject: tls\r\n\r\nover STARTTLS\r\n');
    expect(c.secure).toBe(true);
    expect(c.tlsSocket!.getProtocol()).toMatch(/TLSv1\.[23]/);
    const [got] = await delivered('over STARTTLS');
    expect(got!.raw.toString()).toMatch(/TLS/); // Postfix's Received: header records the TLS session
  });

  scenario(S, 'implicit TLS', async () => {
    await using c = client(pf.tlsPort, { tls: 'implicit', tlsOptions: { ca: pf.ca } });
    expect((await c.connect()).code).toBe(220);
    await c.sendmail('sender@example.test', to('carol'), 'Subject: smtps\r\n\r\nimplicit\r\n');
    const [got] = await delivered('Subject: smtps');
    expect(got!.raw.toString()).toMatch(/TLS/);
  });

  for (const [mech, plugin] of [['PLAIN', authPlain], ['LOGIN', authLogin], ['CRAM-MD5', authCramMd5]] as const) {
    scenario(S, `AUTH ${mech}` as Scenario, async () => {
      const events: TranscriptEvent[] = [];
      await using c = client(pf.port, { tls: 'required', tlsOptions: { ca: pf.ca }, plugins: [plugin()], debug: (e: TranscriptEvent) => events.push(e) });
      expect((await c.login(pf.auth!.user, pf.auth!.password)).code).toBe(235);
      expect(events.some((e) => e.text.startsWith(`AUTH ${mech}`))).toBe(true);
      expect(JSON.stringify(events)).not.toContain(pf.auth!.password);
      await c.sendmail('sender@example.test', to('dave'), `Subject: auth ${mech}\r\n\r\nx\r\n`);
      await delivered(`Subject: auth ${mech}`);
    });
  }

  scenario(S, 'pipelining', async () => {
    const events: TranscriptEvent[] = [];
    await using c = client(pf.port, { chunking: 'never', debug: (e: TranscriptEvent) => events.push(e) });
    await c.sendmail('sender@example.test', [to('p1'), to('p2')], 'Subject: pipe\r\n\r\nx\r\n');
    await delivered('Subject: pipe', 2);
    const seq = events.filter((e) => e.direction !== 'info').map((e) => `${e.direction[0]}:${e.text.split(' ')[0]}`);
    const i = seq.indexOf('c:MAIL');
    expect(seq.slice(i, i + 4)).toEqual(['c:MAIL', 'c:RCPT', 'c:RCPT', 'c:DATA']);
  });

  scenario(S, 'BDAT', async () => {
    const events: TranscriptEvent[] = [];
    await using c = client(pf.port, { chunkSize: 4096, debug: (e: TranscriptEvent) => events.push(e) });
    // One message in a single write (small body), one streamed as several chunks.
    await c.sendmail('sender@example.test', to('chunk1'), 'Subject: bdat small\r\n\r\n.dot stays single\n');
    const lines = Array.from({ length: 3000 }, (_, n) => `.line ${n}\r\n`);
    await c.sendmail('sender@example.test', to('chunk2'), Readable.from([Buffer.from('Subject: bdat big\r\n\r\n'), ...lines.map((l) => Buffer.from(l))]));
    expect(events.filter((e) => e.text.startsWith('BDAT')).length).toBeGreaterThan(2);
    expect(events.some((e) => e.text.startsWith('BDAT') && e.text.includes('LAST'))).toBe(true);
    expect(events.some((e) => e.text === 'DATA')).toBe(false);
    const [small] = await delivered('Subject: bdat small');
    const [big] = await delivered('Subject: bdat big');
    expect(lf(small!.content.toString())).toBe('Subject: bdat small\n\n.dot stays single\n');
    expect(lf(big!.content.toString())).toBe(`Subject: bdat big\n\n${lf(lines.join(''))}`);
  });

  scenario(S, 'DSN', async () => {
    const events: TranscriptEvent[] = [];
    await using c = client(pf.port, { plugins: [dsn({ strict: true })], debug: (e: TranscriptEvent) => events.push(e) });
    await c.sendmail('sender@example.test', [to('dsn1'), to('dsn2')], 'Subject: dsn\r\n\r\nx\r\n', {
      mailOptions: { dsn: { ret: 'HDRS', envid: 'env-42' } },
      rcptOptions: { [to('dsn1')]: { dsn: { notify: ['SUCCESS'], orcpt: 'first@orig.example' } }, [to('dsn2')]: { dsn: { notify: ['NEVER'] } } },
    });
    expect(events.find((e) => e.text.startsWith('MAIL FROM'))!.text).toMatch(/ RET=HDRS ENVID=env-42$/);
    await delivered('Subject: dsn', 2);
    // Postfix honours NOTIFY=SUCCESS for dsn1 only: one success report to the sender.
    const start = Date.now();
    let reports = await pf.deliveryReports();
    while (!reports.some((r) => r.raw.includes('env-42')) && Date.now() - start < 30_000) {
      await new Promise((r) => setTimeout(r, 200));
      reports = await pf.deliveryReports();
    }
    const report = reports.find((r) => r.raw.includes('env-42'))!.raw.toString();
    expect(report).toMatch(/Original-Envelope-Id: env-42/);
    expect(report).toMatch(/Original-Recipient: rfc822;first@orig.example/);
    expect(report).not.toContain('dsn2@');
  });

  scenario(S, 'SMTPUTF8 address', async () => {
    const events: TranscriptEvent[] = [];
    await using c = client(pf.port, { debug: (e: TranscriptEvent) => events.push(e) });
    await c.sendmail('jörg@example.test', 'zoë@example.test', 'Subject: utf8\r\n\r\nx\r\n');
    expect(events.find((e) => e.text.startsWith('MAIL FROM'))!.text).toMatch(/SMTPUTF8/);
    const [got] = await delivered('Subject: utf8');
    expect(got!.sender).toBe('jörg@example.test');
    expect(got!.originalRecipient).toBe('zoë@example.test');
  });

  scenario(S, '8-bit body', async () => {
    await using c = client(pf.port, { chunking: 'never' });
    await c.sendmail('sender@example.test', to('eight'), 'Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGrüße, 你好\r\n');
    const [got] = await delivered('Subject: 8bit');
    expect(got!.content.toString('utf8')).toContain('Grüße, 你好');
  });

  scenario(S, '50 MB body', async () => {
    await using c = client(pf.port);
    const { body, size } = bigBody(50);
    await c.sendmail('sender@example.test', to('big'), body);
    const [got] = await delivered('Subject: big');
    // Maildir stores LF line ends: one octet less per line.
    expect(got!.content.length).toBe(size - (size - 16) / 80 - 2);
  }, 180_000);

  scenario(S, '100 messages / 1 connection', async () => {
    await using c = client(pf.port);
    for (let n = 0; n < 100; n++) await c.sendmail('sender@example.test', to(`bulk${n % 5}`), `Subject: bulk ${n}\r\n\r\n${n}\r\n`);
    const got = await delivered(/Subject: bulk \d+/, 100);
    const subjects = new Set(got.map((m) => /Subject: (bulk \d+)/.exec(m.content.toString())?.[1]).filter(Boolean));
    expect(subjects.size).toBe(100);
  }, 120_000);

  scenario(S, 'smuggling variants', async () => {
    for (const chunking of ['auto', 'never'] as const) {
      await using c = client(pf.port, { chunking });
      await c.sendmail('sender@example.test', to(`smuggle-${chunking}`), SMUGGLE);
    }
    const got = await delivered('Subject: smuggling', 2);
    for (const m of got) {
      const text = lf(m.content.toString());
      expect(text).toBe('Subject: smuggling\n\nbefore\n.\nMAIL FROM:<evil@x>\n.\nRCPT TO:<evil@x>\n.\nDATA\n.\nafter\n');
    }
    // Nothing after the fake terminators was taken as a command: no message to evil@x.
    expect((await pf.deliveredMessages()).some((m) => m.originalRecipient === 'evil@x')).toBe(false);
  });

  notSupported(S, 'LMTP partial failure');
});

// ---- Dovecot LMTP ------------------------------------------------------------------------------

describe.skipIf(!dovecotAvailable())('Dovecot LMTP', () => {
  const S = 'Dovecot LMTP';
  let dv: DovecotServer;
  beforeAll(async () => {
    dv = await startDovecot();
  });
  afterAll(async () => {
    await dv?.stop();
  });

  scenario(S, 'LMTP partial failure', async () => {
    for (const chunking of ['auto', 'never'] as const) {
      await using c = client(dv.lmtpPort, { plugins: [lmtp()], chunking });
      const before = (await dv.deliveredMessages('alice')).length;
      const rcpts = ['alice@example.test', 'nobody-here@example.test', 'tiny@example.test', 'bob@example.test'];
      const r = await c.sendmail('sender@example.test', rcpts, `Subject: lmtp ${chunking}\r\n\r\n${'quota filler '.repeat(20)}\r\n`);
      expect(r.accepted).toEqual(['alice@example.test', 'bob@example.test']);
      expect(r.refused['nobody-here@example.test']).toMatchObject({ code: 550, enhancedCode: '5.1.1' });
      if (quotaAvailable()) expect(r.refused['tiny@example.test']).toMatchObject({ code: 552, enhancedCode: '5.2.2' });
      const got = await dv.waitForDelivery({ user: 'alice', count: before + 1, timeoutMs: 30_000 });
      expect(lf(got.at(-1)!.content.toString())).toContain(`lmtp ${chunking}`);
    }
  });

  scenario(S, 'BDAT', async () => {
    const events: TranscriptEvent[] = [];
    await using c = new SmtpClient({ host: dv.lmtpSocket, plugins: [lmtp()], chunkSize: 1024, debug: (e) => events.push(e) });
    const before = (await dv.deliveredMessages('bob')).length;
    const body = Readable.from([Buffer.from('Subject: over the unix socket\r\n\r\n'), ...Array.from({ length: 200 }, () => Buffer.from('.x\n'.repeat(10)))]);
    const r = await c.sendmail('sender@example.test', ['bob@example.test'], body);
    expect(r.accepted).toEqual(['bob@example.test']);
    expect(events.filter((e) => e.text.startsWith('BDAT')).length).toBeGreaterThan(2);
    const got = await dv.waitForDelivery({ user: 'bob', count: before + 1, timeoutMs: 30_000 });
    expect(lf(got.at(-1)!.content.toString())).toBe(`Subject: over the unix socket\n\n${'.x\n'.repeat(2000)}`);
  });

  scenario(S, 'pipelining', async () => {
    const events: TranscriptEvent[] = [];
    await using c = client(dv.lmtpPort, { plugins: [lmtp()], chunking: 'never', debug: (e: TranscriptEvent) => events.push(e) });
    await c.sendmail('sender@example.test', ['alice@example.test', 'bob@example.test'], 'Subject: p\r\n\r\nx\r\n');
    const seq = events.filter((e) => e.direction !== 'info').map((e) => `${e.direction[0]}:${e.text.split(' ')[0]}`);
    const i = seq.indexOf('c:MAIL');
    expect(seq.slice(i, i + 4)).toEqual(['c:MAIL', 'c:RCPT', 'c:RCPT', 'c:DATA']);
  });

  scenario(S, '8-bit body', async () => {
    await using c = client(dv.lmtpPort, { plugins: [lmtp()] });
    const before = (await dv.deliveredMessages('alice')).length;
    await c.sendmail('sender@example.test', 'alice@example.test', 'Subject: 8\r\n\r\nÆøå ünïcödé\r\n');
    const got = await dv.waitForDelivery({ user: 'alice', count: before + 1, timeoutMs: 30_000 });
    expect(got.at(-1)!.content.toString('utf8')).toContain('Æøå ünïcödé');
  });

  scenario(S, 'SMTPUTF8 address', async () => {
    // Dovecot does not offer SMTPUTF8: mailstage refuses before MAIL rather than send it anyway.
    await using c = client(dv.lmtpPort, { plugins: [lmtp()] });
    await expect(c.sendmail('jörg@example.test', 'alice@example.test', 'x')).rejects.toBeInstanceOf(SmtpNotSupportedError);
  });

  notSupported(S, 'STARTTLS', 'implicit TLS', 'AUTH PLAIN', 'AUTH LOGIN', 'AUTH CRAM-MD5', 'DSN');
});

// ---- aiosmtpd ----------------------------------------------------------------------------------

describe.skipIf(!aiosmtpdAvailable())('aiosmtpd', () => {
  const S = 'aiosmtpd';
  let plain: AiosmtpdServer;
  let starttls: AiosmtpdServer;
  let implicit: AiosmtpdServer;
  let lmtpServer: AiosmtpdServer;
  beforeAll(async () => {
    [plain, starttls, implicit, lmtpServer] = await Promise.all([
      startAiosmtpd({ rejectRecipients: ['nobody@example.test'] }),
      startAiosmtpd({ tls: 'starttls' }),
      startAiosmtpd({ tls: 'implicit' }),
      startAiosmtpd({ lmtp: true, failRecipients: ['full@example.test'], rejectRecipients: ['nobody@example.test'] }),
    ]);
  });
  afterAll(async () => {
    await Promise.all([plain, starttls, implicit, lmtpServer].map((s) => s?.stop()));
  });

  scenario(S, 'plain', async () => {
    await using c = client(plain.port);
    const r = await c.sendmail('a@example.test', ['b@example.test', 'nobody@example.test'], 'Subject: aio\r\n\r\nhi\r\n');
    expect(Object.keys(r.refused)).toEqual(['nobody@example.test']);
    const got = (await plain.waitForMessages({ count: 1 })).at(-1)!;
    expect(got.rcptTos).toEqual(['b@example.test']);
    expect(got.content.toString()).toBe('Subject: aio\r\n\r\nhi\r\n');
  });

  scenario(S, 'STARTTLS', async () => {
    await using c = client(starttls.port, { tls: 'required', tlsOptions: { ca: starttls.ca } });
    await c.sendmail('a@example.test', 'b@example.test', 'Subject: t\r\n\r\nx\r\n');
    expect((await starttls.waitForMessages({ count: 1 })).at(-1)!.tls).toBe(true);
  });

  scenario(S, 'implicit TLS', async () => {
    await using c = client(implicit.port, { tls: 'implicit', tlsOptions: { ca: implicit.ca } });
    await c.sendmail('a@example.test', 'b@example.test', 'Subject: t\r\n\r\nx\r\n');
    expect((await implicit.waitForMessages({ count: 1 })).at(-1)!.tls).toBe(true);
  });

  let authCount = 0;
  for (const [mech, plugin] of [['PLAIN', authPlain], ['LOGIN', authLogin], ['CRAM-MD5', authCramMd5]] as const) {
    scenario(S, `AUTH ${mech}` as Scenario, async () => {
      await using c = client(starttls.port, { tls: 'required', tlsOptions: { ca: starttls.ca }, plugins: [plugin()] });
      expect((await c.login(AIOSMTPD_USER, AIOSMTPD_PASSWORD)).code).toBe(235);
      await c.sendmail('a@example.test', 'b@example.test', `Subject: ${mech}\r\n\r\nx\r\n`);
      authCount++;
      const got = (await starttls.waitForMessages({ count: 1 + authCount })).at(-1)!;
      expect(got.login).toBe(AIOSMTPD_USER);
    });
  }

  scenario(S, 'SMTPUTF8 address', async () => {
    await using c = client(plain.port);
    const before = (await plain.receivedMessages()).length;
    await c.sendmail('jörg@example.test', 'zoë@bücher.example', 'Subject: u\r\n\r\nx\r\n');
    const got = (await plain.waitForMessages({ count: before + 1 })).at(-1)!;
    expect(got.smtpUtf8).toBe(true);
    expect(got.rcptTos).toEqual(['zoë@bücher.example']);
  });

  scenario(S, '8-bit body', async () => {
    await using c = client(plain.port);
    const before = (await plain.receivedMessages()).length;
    await c.sendmail('a@example.test', 'b@example.test', 'Subject: 8\r\n\r\nGrüße\r\n');
    const got = (await plain.waitForMessages({ count: before + 1 })).at(-1)!;
    expect(got.mailOptions).toContain('BODY=8BITMIME');
    expect(got.content.toString('utf8')).toContain('Grüße');
  });

  scenario(S, '50 MB body', async () => {
    await using c = client(plain.port);
    const before = (await plain.receivedMessages()).length;
    const { body, size } = bigBody(50);
    await c.sendmail('a@example.test', 'b@example.test', body);
    const got = (await plain.waitForMessages({ count: before + 1, timeoutMs: 120_000 })).at(-1)!;
    expect(got.size).toBe(size);
  }, 180_000);

  scenario(S, '100 messages / 1 connection', async () => {
    await using c = client(plain.port);
    const before = (await plain.receivedMessages()).length;
    for (let n = 0; n < 100; n++) await c.sendmail('a@example.test', 'b@example.test', `Subject: ${n}\r\n\r\n${n}\r\n`);
    expect((await plain.waitForMessages({ count: before + 100 })).length).toBe(before + 100);
  }, 120_000);

  scenario(S, 'smuggling variants', async () => {
    await using c = client(plain.port);
    const before = (await plain.receivedMessages()).length;
    await c.sendmail('a@example.test', 'b@example.test', SMUGGLE);
    const got = (await plain.waitForMessages({ count: before + 1 })).at(-1)!;
    expect(got.content.toString()).toBe('Subject: smuggling\r\n\r\nbefore\r\n.\r\nMAIL FROM:<evil@x>\r\n.\r\nRCPT TO:<evil@x>\r\n.\r\nDATA\r\n.\r\nafter\r\n');
    await new Promise((r) => setTimeout(r, 300));
    expect((await plain.receivedMessages()).length).toBe(before + 1);
  });

  scenario(S, 'LMTP partial failure', async () => {
    await using c = client(lmtpServer.port, { plugins: [lmtp()] });
    const r = await c.sendmail('a@example.test', ['ok@example.test', 'full@example.test', 'nobody@example.test'], 'Subject: l\r\n\r\nx\r\n');
    expect(r.accepted).toEqual(['ok@example.test']);
    expect(r.refused['full@example.test']!.code).toBe(550);
    expect(r.refused['nobody@example.test']!.code).toBe(550);
  });

  notSupported(S, 'pipelining', 'BDAT', 'DSN');
});

// ---- smtp-sink ---------------------------------------------------------------------------------

describe.skipIf(!sinkAvailable())('Postfix smtp-sink', () => {
  const S = 'smtp-sink';
  let sink: SmtpSinkServer;
  let lsink: SmtpSinkServer;
  beforeAll(async () => {
    [sink, lsink] = await Promise.all([startSmtpSink(), startSmtpSink({ lmtp: true })]);
  });
  afterAll(async () => {
    await Promise.all([sink?.stop(), lsink?.stop()]);
  });

  scenario(S, '100 messages / 1 connection', async () => {
    const events: TranscriptEvent[] = [];
    await using c = client(sink.port, { debug: (e: TranscriptEvent) => events.push(e) });
    for (let n = 0; n < 100; n++) await c.sendmail('a@example.test', 'b@example.test', `Subject: ${n}\r\n\r\n${n}\r\n`);
    await c.quit();
    // The bare "250 " last EHLO line is accepted; PIPELINING is used.
    expect(c.features.size).toBe(0);
    const counts = await sink.waitForMessages({ count: 100, timeoutMs: 10_000 });
    expect(counts.messages).toBeGreaterThanOrEqual(100);
  });

  scenario(S, 'DSN', async () => {
    await using c = client(sink.port, { plugins: [dsn({ strict: true })] });
    const r = await c.sendmail('a@example.test', 'b@example.test', 'x', { rcptOptions: { dsn: { notify: ['FAILURE'] } } });
    expect(r.response.code).toBe(250);
  });

  scenario(S, 'LMTP partial failure', async () => {
    await using c = client(lsink.port, { plugins: [lmtp()] });
    const r = await c.sendmail('a@example.test', ['x@example.test', 'y@example.test'], 'x');
    expect(r.accepted).toEqual(['x@example.test', 'y@example.test']);
  });

  scenario(S, 'smuggling variants', async () => {
    await using c = client(sink.port);
    const r = await c.sendmail('a@example.test', 'b@example.test', SMUGGLE);
    expect(r.response.code).toBe(250);
    // A smuggled command would have produced extra replies: the session would be out of step.
    expect((await c.noop()).code).toBe(250);
  });
});
