/**
 * Proves the real-server harness (test/interop/servers/) works, independently of mailstage's own
 * client: every conversation here is Debian's Python smtplib (/usr/bin/python3). Each server is
 * checked for what it advertises, what it accepts and refuses, and what it actually stored.
 * Finally every server process (the whole tree) must be gone after stop().
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { available as aiosmtpdAvailable, startAiosmtpd, type AiosmtpdServer } from './servers/aiosmtpd.js';
import { isAlive, processTree, SYSTEM_PYTHON } from './servers/common.js';
import { available as dovecotAvailable, quotaAvailable, startDovecot, type DovecotServer } from './servers/dovecot.js';
import { available as postfixAvailable, startPostfix, type PostfixServer } from './servers/postfix.js';
import { available as sinkAvailable, startSmtpSink, type SmtpSinkServer } from './servers/smtp-sink.js';

/** Every PID (with descendants) seen while servers ran, to prove none survives its stop(). */
const seenPids = new Set<number>();
function remember(...roots: number[]): void {
  for (const root of roots) for (const pid of processTree(root)) seenPids.add(pid);
}

const PRELUDE = `
import json, sys, smtplib, ssl, base64
A = json.loads(sys.argv[1])
def ctx():
    return ssl.create_default_context(cadata=A["ca"])
def rep(x):
    return [x[0], x[1].decode("utf-8", "replace") if isinstance(x[1], bytes) else str(x[1])]
def refused(e):
    return {k: rep(v) for k, v in e.recipients.items()}
out = {}
`;

/** Runs a Python smtplib snippet with `A` = args; the snippet fills `out`, printed as JSON. */
function smtplib(code: string, args: Record<string, unknown>): Promise<Record<string, any>> {
  const script = `${PRELUDE}\n${code}\nprint(json.dumps(out))\n`;
  return new Promise((resolve, reject) => {
    execFile(SYSTEM_PYTHON, ['-c', script, JSON.stringify(args)], { timeout: 60_000, env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`python failed: ${error.message}\n${stderr}\n${stdout}`));
      try {
        const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, any>;
        if (process.env.HARNESS_DEBUG) console.log(JSON.stringify(out, null, 1));
        resolve(out);
      } catch {
        reject(new Error(`python printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
  });
}

/** The EHLO/LHLO keywords from smtplib's reply text (first line is the server name). */
function keywords(reply: [number, string]): string[] {
  return reply[1].split('\n').slice(1).map((l) => l.trim());
}

describe.skipIf(!sinkAvailable())('smtp-sink', () => {
  let sink: SmtpSinkServer;
  let lmtpSink: SmtpSinkServer;
  beforeAll(async () => {
    [sink, lmtpSink] = await Promise.all([startSmtpSink(), startSmtpSink({ lmtp: true })]);
    remember(sink.pid, lmtpSink.pid);
  });
  afterAll(async () => {
    await Promise.all([sink?.stop(), lmtpSink?.stop()]);
  });

  it('accepts SMTP and counts the messages', async () => {
    const out = await smtplib(
      `
s = smtplib.SMTP("127.0.0.1", A["port"])
out["ehlo"] = rep(s.ehlo())
for i in range(3):
    s.sendmail("a@example.test", ["b@example.test", "c@example.test"], b"Subject: %d\\r\\n\\r\\nhi\\r\\n" % i)
s.quit()
`,
      { port: sink.port },
    );
    expect(out.ehlo[0]).toBe(250);
    expect(keywords(out.ehlo)).toEqual(expect.arrayContaining(['PIPELINING', '8BITMIME', 'DSN', 'ENHANCEDSTATUSCODES']));
    const counts = await sink.waitForMessages({ count: 3 });
    expect(counts.messages).toBe(3);
  });

  it('speaks LMTP with -L: one reply per recipient after the body', async () => {
    const out = await smtplib(
      `
s = smtplib.LMTP("127.0.0.1", A["port"])
out["lhlo"] = rep(s.docmd("LHLO client.example.test"))
s.mail("a@example.test")
s.rcpt("b@example.test")
s.rcpt("c@example.test")
out["data"] = rep(s.docmd("DATA"))
s.send(b"Subject: x\\r\\n\\r\\nx\\r\\n.\\r\\n")
out["replies"] = [rep(s.getreply()), rep(s.getreply())]
s.quit()
`,
      { port: lmtpSink.port },
    );
    expect(out.lhlo[0]).toBe(250);
    expect(out.data[0]).toBe(354);
    expect(out.replies.map((r: [number, string]) => r[0])).toEqual([250, 250]);
  });
});

describe.skipIf(!dovecotAvailable())('Dovecot LMTP', () => {
  let dovecot: DovecotServer;
  beforeAll(async () => {
    dovecot = await startDovecot();
    remember(dovecot.pid);
  });
  afterAll(async () => {
    await dovecot?.stop();
  });

  it('gives 250 for alice, 550 5.1.1 for an unknown user at RCPT and 552 5.2.2 for tiny after DATA', async () => {
    const out = await smtplib(
      `
s = smtplib.LMTP("127.0.0.1", A["port"])
out["lhlo"] = rep(s.docmd("LHLO client.example.test"))
s.mail("sender@example.test")
out["rcpt"] = [rep(s.rcpt(r)) for r in ["alice@example.test", "nobody-here@example.test", "tiny@example.test", "bob@example.test"]]
out["data"] = rep(s.docmd("DATA"))
s.send(b"Subject: lmtp test\\r\\n\\r\\nhello alice\\r\\n.\\r\\n")
out["after"] = [rep(s.getreply()) for _ in range(3)]
s.quit()
`,
      { port: dovecot.lmtpPort },
    );
    expect(keywords(out.lhlo)).toEqual(expect.arrayContaining(['PIPELINING', 'CHUNKING', 'ENHANCEDSTATUSCODES', '8BITMIME']));
    expect(out.rcpt[0][0]).toBe(250);
    expect(out.rcpt[1][0]).toBe(550);
    expect(out.rcpt[1][1]).toMatch(/^5\.1\.1 /);
    expect(out.rcpt[2][0]).toBe(250);
    expect(out.data[0]).toBe(354);
    // One reply per accepted recipient, in RCPT order: alice, tiny, bob.
    expect(out.after[0][0]).toBe(250);
    if (quotaAvailable()) {
      expect(out.after[1][0]).toBe(552);
      expect(out.after[1][1]).toMatch(/^5\.2\.2 <tiny@example\.test>/);
    }
    expect(out.after[2][0]).toBe(250);

    const [alice] = await dovecot.waitForDelivery({ user: 'alice', count: 1 });
    expect(alice!.sender).toBe('sender@example.test');
    expect(alice!.content.toString()).toBe('Subject: lmtp test\n\nhello alice\n');
    expect(await dovecot.deliveredMessages('bob')).toHaveLength(1);
    expect(await dovecot.deliveredMessages('tiny')).toHaveLength(0);
  });

  it('speaks LMTP on the unix socket too', async () => {
    const out = await smtplib(
      `
s = smtplib.LMTP(A["socket"])
s.sendmail("sender@example.test", ["bob@localhost"], b"Subject: via socket\\r\\n\\r\\nx\\r\\n")
s.quit()
out["ok"] = True
`,
      { socket: dovecot.lmtpSocket },
    );
    expect(out.ok).toBe(true);
    const bob = await dovecot.waitForDelivery({ user: 'bob', count: 2 });
    expect(bob.at(-1)!.content.toString()).toContain('Subject: via socket');
  });
});

describe.skipIf(!postfixAvailable() || !dovecotAvailable())('Postfix with Dovecot SASL', () => {
  let postfix: PostfixServer;
  let small: PostfixServer;
  beforeAll(async () => {
    postfix = await startPostfix();
    // A second instance sharing the first one's Dovecot, with a tiny SIZE limit and no TLS-less AUTH.
    small = await startPostfix({ messageSizeLimit: 2000, sasl: postfix.dovecot!, authOnlyWithTls: true });
    remember(postfix.masterPid, postfix.dovecot!.pid, small.masterPid);
  });
  afterAll(async () => {
    await small?.stop();
    await postfix?.stop();
  });

  it('advertises the full ESMTP set and delivers over plain, STARTTLS + AUTH PLAIN and implicit TLS + AUTH LOGIN', async () => {
    const out = await smtplib(
      `
s = smtplib.SMTP("127.0.0.1", A["port"])
out["ehlo"] = rep(s.ehlo("client.example.test"))
out["plain"] = s.sendmail("plain@sender.test", ["alice@example.test"], b"Subject: plain\\r\\n\\r\\nplain body\\r\\n")
out["starttls"] = rep(s.starttls(context=ctx()))
out["ehlo_tls"] = rep(s.ehlo("client.example.test"))
s.user, s.password = A["user"], A["password"]
out["auth"] = rep(s.auth("PLAIN", s.auth_plain))
out["tls_auth"] = s.sendmail("tls@sender.test", ["bob@example.test", "Carol@localhost"], b"Subject: starttls\\r\\n\\r\\ntls body \\xc3\\xa9\\r\\n", mail_options=["BODY=8BITMIME"])
try:
    s.sendmail("x@sender.test", [A["unknown"]], b"Subject: x\\r\\n\\r\\nx\\r\\n")
except smtplib.SMTPRecipientsRefused as e:
    out["unknown"] = refused(e)
try:
    s.sendmail("x@sender.test", ["someone@elsewhere.test"], b"Subject: x\\r\\n\\r\\nx\\r\\n")
except smtplib.SMTPRecipientsRefused as e:
    out["relay"] = refused(e)
s.quit()

s = smtplib.SMTP_SSL("127.0.0.1", A["tlsPort"], context=ctx())
out["ehlo_implicit"] = rep(s.ehlo("client.example.test"))
s.user, s.password = A["user"], A["password"]
out["auth_login"] = rep(s.auth("LOGIN", s.auth_login, initial_response_ok=False))
out["implicit"] = s.sendmail("implicit@sender.test", ["dave@example.test"], b"Subject: implicit\\r\\n\\r\\nimplicit body\\r\\n")
s.quit()

s = smtplib.SMTP("127.0.0.1", A["port"])
s.ehlo()
s.user, s.password = A["user"], A["password"]
out["cram"] = rep(s.auth("CRAM-MD5", s.auth_cram_md5))
s.quit()

# A fresh session: smtplib takes a 503 "already authenticated" as success.
s = smtplib.SMTP("127.0.0.1", A["port"])
s.ehlo()
try:
    s.user, s.password = A["user"], "wrong"
    s.auth("PLAIN", s.auth_plain)
except smtplib.SMTPAuthenticationError as e:
    out["bad_auth"] = [e.smtp_code, e.smtp_error.decode()]
s.quit()
`,
      { port: postfix.port, tlsPort: postfix.tlsPort, ca: postfix.ca, user: postfix.auth!.user, password: postfix.auth!.password, unknown: postfix.unknownRecipient },
    );
    expect(keywords(out.ehlo)).toEqual(
      expect.arrayContaining(['PIPELINING', `SIZE ${postfix.messageSizeLimit}`, 'STARTTLS', 'AUTH PLAIN LOGIN CRAM-MD5', 'ENHANCEDSTATUSCODES', '8BITMIME', 'DSN', 'SMTPUTF8', 'CHUNKING']),
    );
    expect(out.plain).toEqual({});
    expect(out.starttls[0]).toBe(220);
    expect(keywords(out.ehlo_tls)).not.toContain('STARTTLS');
    expect(out.auth[0]).toBe(235);
    expect(out.tls_auth).toEqual({});
    expect(out.unknown[postfix.unknownRecipient][0]).toBe(550);
    expect(out.unknown[postfix.unknownRecipient][1]).toMatch(/^5\.1\.1 /);
    expect(out.relay['someone@elsewhere.test'][0]).toBe(554);
    expect(keywords(out.ehlo_implicit)).not.toContain('STARTTLS');
    expect(out.auth_login[0]).toBe(235);
    expect(out.implicit).toEqual({});
    expect(out.cram[0]).toBe(235);
    expect(out.bad_auth[0]).toBe(535);

    const messages = await postfix.waitForDelivery({ count: 4 });
    const byRecipient = new Map(messages.map((m) => [m.originalRecipient, m]));
    expect([...byRecipient.keys()].sort()).toEqual(['Carol@localhost', 'alice@example.test', 'bob@example.test', 'dave@example.test']);
    expect(byRecipient.get('alice@example.test')!.sender).toBe('plain@sender.test');
    expect(byRecipient.get('alice@example.test')!.content.toString()).toBe('Subject: plain\n\nplain body\n');
    expect(byRecipient.get('bob@example.test')!.content.toString('utf8')).toBe('Subject: starttls\n\ntls body é\n');
    expect(byRecipient.get('dave@example.test')!.content.toString()).toBe('Subject: implicit\n\nimplicit body\n');
    // Postfix's own Received header records TLS and the SASL login for the STARTTLS delivery.
    expect(byRecipient.get('bob@example.test')!.raw.toString()).toMatch(/with ESMTPSA/);
  });

  it('takes BDAT, DSN parameters and an SMTPUTF8 recipient', async () => {
    const out = await smtplib(
      `
s = smtplib.SMTP("127.0.0.1", A["port"])
s.ehlo()
body = b"Subject: bdat\\r\\n\\r\\nchunked\\r\\n"
out["mail"] = rep(s.docmd("MAIL FROM:<dsn-sender@example.test> RET=HDRS ENVID=id+2B1"))
out["rcpt"] = rep(s.docmd("RCPT TO:<erin@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;erin@example.test"))
s.send(b"BDAT %d LAST\\r\\n" % len(body) + body)
out["bdat"] = rep(s.getreply())
out["utf8"] = s.sendmail("sénder@sender.test", ["ünïcode@example.test"], "Subject: utf8\\r\\n\\r\\nnaïve\\r\\n".encode(), mail_options=["SMTPUTF8", "BODY=8BITMIME"])
s.quit()
`,
      { port: postfix.port },
    );
    expect(out.mail[0]).toBe(250);
    expect(out.rcpt[0]).toBe(250);
    expect(out.bdat[0]).toBe(250);
    expect(out.utf8).toEqual({});
    // 4 from the previous test, erin, the UTF-8 one, and the success DSN for erin's message.
    const messages = await postfix.waitForDelivery({ count: 7 });
    const erin = messages.find((m) => m.originalRecipient === 'erin@example.test')!;
    expect(erin.content.toString()).toBe('Subject: bdat\n\nchunked\n');
    const [report] = await postfix.deliveryReports();
    expect(report!.originalRecipient).toBe('dsn-sender@example.test');
    expect(report!.content.toString()).toContain('Original-Envelope-Id: id+1');
    expect(report!.content.toString()).toContain('Original-Recipient: rfc822;erin@example.test');
    expect(report!.content.toString()).toContain('Action: delivered');
    const utf8 = messages.find((m) => m.originalRecipient === 'ünïcode@example.test')!;
    expect(utf8.sender).toBe('sénder@sender.test');
    expect(utf8.content.toString('utf8')).toBe('Subject: utf8\n\nnaïve\n');
  });

  it('enforces its SIZE limit and AUTH-only-after-STARTTLS on the second instance', async () => {
    const out = await smtplib(
      `
s = smtplib.SMTP("127.0.0.1", A["port"])
out["ehlo"] = rep(s.ehlo())
out["size"] = rep(s.docmd("MAIL FROM:<a@sender.test> SIZE=5000"))
s.rset()
s.starttls(context=ctx())
out["ehlo_tls"] = rep(s.ehlo())
s.quit()
`,
      { port: small.port, ca: small.ca },
    );
    expect(keywords(out.ehlo)).toContain('SIZE 2000');
    expect(keywords(out.ehlo).some((k) => k.startsWith('AUTH'))).toBe(false);
    expect(out.size[0]).toBe(552);
    expect(keywords(out.ehlo_tls)).toContain('AUTH PLAIN LOGIN CRAM-MD5');
  });
});

describe.skipIf(!aiosmtpdAvailable())('aiosmtpd', () => {
  let smtp: AiosmtpdServer;
  let implicit: AiosmtpdServer;
  let lmtp: AiosmtpdServer;
  beforeAll(async () => {
    [smtp, implicit, lmtp] = await Promise.all([
      startAiosmtpd({ tls: 'starttls' }),
      startAiosmtpd({ tls: 'implicit' }),
      startAiosmtpd({ lmtp: true, failRecipients: ['broken@example.test'] }),
    ]);
    remember(smtp.pid, implicit.pid, lmtp.pid);
  });
  afterAll(async () => {
    await Promise.all([smtp?.stop(), implicit?.stop(), lmtp?.stop()]);
  });

  it('receives with STARTTLS, every AUTH mechanism and SMTPUTF8', async () => {
    const out = await smtplib(
      `
s = smtplib.SMTP("127.0.0.1", A["port"])
out["ehlo"] = rep(s.ehlo("client.example.test"))
s.starttls(context=ctx())
out["ehlo_tls"] = rep(s.ehlo("client.example.test"))
s.user, s.password = A["user"], A["password"]
out["auth"] = rep(s.auth("PLAIN", s.auth_plain))
out["send"] = s.sendmail("sénder@example.test", ["ünï@example.test", "plain@example.test"], "Subject: ü\\r\\n\\r\\nbody é\\r\\n.dot\\r\\n".encode(), mail_options=["SMTPUTF8", "BODY=8BITMIME"])
s.quit()
out["mechs"] = {}
for mech, fn in [("LOGIN", "auth_login"), ("CRAM-MD5", "auth_cram_md5"), ("PLAIN", "auth_plain")]:
    s = smtplib.SMTP("127.0.0.1", A["port"])
    s.ehlo()
    s.user, s.password = A["user"], A["password"]
    out["mechs"][mech] = rep(s.auth(mech, getattr(s, fn), initial_response_ok=False))
    s.quit()
s = smtplib.SMTP("127.0.0.1", A["port"])
s.ehlo()
try:
    s.user, s.password = A["user"], "wrong"
    s.auth("CRAM-MD5", s.auth_cram_md5)
except smtplib.SMTPAuthenticationError as e:
    out["bad"] = e.smtp_code
s.quit()
`,
      { port: smtp.port, ca: smtp.ca, user: smtp.auth!.user, password: smtp.auth!.password },
    );
    expect(keywords(out.ehlo)).toEqual(expect.arrayContaining(['8BITMIME', 'SMTPUTF8', 'STARTTLS', 'AUTH CRAM-MD5 LOGIN PLAIN']));
    expect(out.auth[0]).toBe(235);
    expect(out.send).toEqual({});
    expect(out.mechs).toEqual({ LOGIN: [235, expect.any(String)], 'CRAM-MD5': [235, expect.any(String)], PLAIN: [235, expect.any(String)] });
    expect(out.bad).toBe(535);
    const [message] = await smtp.waitForMessages({ count: 1 });
    expect(message!.mailFrom).toBe('sénder@example.test');
    expect(message!.rcptTos).toEqual(['ünï@example.test', 'plain@example.test']);
    expect(message!.smtpUtf8).toBe(true);
    expect(message!.login).toBe(smtp.auth!.user);
    expect(message!.tls).toBe(true);
    // aiosmtpd keeps the CRLF the client sent and undoes the dot-stuffing.
    expect(message!.content.toString('utf8')).toBe('Subject: ü\r\n\r\nbody é\r\n.dot\r\n');
  });

  it('receives over implicit TLS', async () => {
    const out = await smtplib(
      `
s = smtplib.SMTP_SSL("127.0.0.1", A["port"], context=ctx())
s.ehlo()
s.login(A["user"], A["password"])
out["send"] = s.sendmail("a@example.test", ["b@example.test"], b"Subject: implicit\\r\\n\\r\\nx\\r\\n")
s.quit()
`,
      { port: implicit.port, ca: implicit.ca, user: implicit.auth!.user, password: implicit.auth!.password },
    );
    expect(out.send).toEqual({});
    const [message] = await implicit.waitForMessages({ count: 1 });
    expect(message!.tls).toBe(true);
  });

  it('LMTP: one reply per recipient, the configured one failing', async () => {
    const out = await smtplib(
      `
s = smtplib.LMTP("127.0.0.1", A["port"])
out["lhlo"] = rep(s.docmd("LHLO client.example.test"))
s.mail("a@example.test")
s.rcpt("ok@example.test")
s.rcpt("broken@example.test")
s.rcpt("fine@example.test")
out["data"] = rep(s.docmd("DATA"))
s.send(b"Subject: x\\r\\n\\r\\nx\\r\\n.\\r\\n")
out["replies"] = [rep(s.getreply()) for _ in range(3)]
s.quit()
`,
      { port: lmtp.port },
    );
    expect(out.lhlo[0]).toBe(250);
    expect(out.replies.map((r: [number, string]) => r[0])).toEqual([250, 550, 250]);
    expect(out.replies[1][1]).toMatch(/^5\.1\.1 <broken@example\.test>/);
    const [message] = await lmtp.waitForMessages({ count: 1 });
    expect(message!.lmtp).toBe(true);
  });
});

describe('clean-up', () => {
  it('left no server process running after stop()', async () => {
    // afterAll hooks of the describes above have run by now (vitest runs suites in order).
    const alive = [...seenPids].filter(isAlive);
    expect(alive).toEqual([]);
  });
});
