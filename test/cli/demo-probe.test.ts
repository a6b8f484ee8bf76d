import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import { SmtpClient } from '../../index.js';
import { formatProbe, parseProbeTarget, probe } from '../../cli/probe.js';
import { startDevServer } from '../../devserver/sink.js';
import { startSmtpServer } from '../helpers/smtp-server.js';
import { tempDir } from '../runner/helpers.js';
import { runCli } from './run.js';

describe('demo', () => {
  it('sends the example batch to the dev sink and prints where the messages are; they parse', async () => {
    // As `npm run demo` runs it: the built CLI.
    const r = await runCli(['demo'], { dist: true });
    expect(r.code, r.stderr).toBe(0);
    // The inbox is up before the batch goes out (so one can watch the messages arrive); without a
    // terminal the demo does not wait and says how to keep it open.
    expect(r.stdout).toMatch(/^dev sink on smtp:\/\/127\.0\.0\.1:\d+ .*\ninbox: http:\/\/127\.0\.0\.1:\d+\/\n/);
    expect(r.stdout).toMatch(/The inbox closes with the demo; `npx mailstage demo --wait` keeps it open/);
    const folder = /(\d+) message\(s\) delivered to (\S+)/.exec(r.stdout);
    expect(folder, r.stdout).not.toBeNull();
    expect(Number(folder![1])).toBe(5);
    const files = readdirSync(folder![2]!).filter((f) => f.endsWith('.eml'));
    expect(files).toHaveLength(5);
    const subjects = [];
    for (const f of files) {
      const mail = await simpleParser(readFileSync(path.join(folder![2]!, f)));
      subjects.push(mail.subject);
      expect(mail.from?.value[0]).toMatchObject({ name: 'Stagecoach', address: 'hello@example.com' });
      expect(mail.text).toMatch(/trial/);
      expect(mail.html).toMatch(/<strong>(FREE|PRO|TEAM)<\/strong>/);
      expect(mail.attachments.map((a) => a.filename)).toEqual(['your-plan.txt']);
      expect(mail.messageId).toMatch(/@example\.com>$/);
    }
    expect(subjects).toContain('Welcome to Stagecoach, Linus "Penguin" Torvalds!');
  }, 60_000);
});

describe('dev sink', () => {
  it('takes any AUTH over STARTTLS and stores each message as .eml; LMTP answers per recipient', async () => {
    const dir = tempDir();
    const lines: string[] = [];
    const sink = await startDevServer({ dir, onMessage: (m) => lines.push(m.file) });
    const client = new SmtpClient({ host: sink.host, port: sink.port, tls: 'required', tlsOptions: { rejectUnauthorized: false } });
    await client.connect();
    await client.ehloOrHeloIfNeeded();
    expect(client.secure).toBe(true);
    await client.login('anyone', 'anything');
    await client.sendmail('a@example.test', ['b@example.test'], 'Subject: hi\r\n\r\nbody\r\n');
    await client.quit();
    await sink.close();
    const stored = readFileSync(lines[0]!, 'utf8');
    expect(stored).toMatch(/^Return-Path: <a@example.test>\r\nDelivered-To: b@example.test\r\nSubject: hi/);

    const lmtpSink = await startDevServer({ dir, lmtp: true });
    const { default: lmtp } = await import('../../plugins/lmtp/index.js');
    const lc = new SmtpClient({ host: lmtpSink.host, port: lmtpSink.port, plugins: [lmtp()] });
    await lc.connect();
    const res = await lc.sendmail('a@example.test', ['x@example.test', 'y@example.test'], 'Subject: l\r\n\r\nx\r\n');
    expect(res.accepted.sort()).toEqual(['x@example.test', 'y@example.test']);
    await lc.quit();
    await lmtpSink.close();
  });
});

describe('probe', () => {
  it('reports greeting, STARTTLS protocol/cipher/certificate, AUTH and extensions', async () => {
    const server = await startSmtpServer({ size: 10 * 1024 * 1024, authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2'] });
    try {
      const report = await probe(parseProbeTarget(`smtp://127.0.0.1:${server.port}`));
      expect(report.greeting.code).toBe(220);
      expect(report.tls.result).toBe('ok');
      expect(report.tls.protocol).toMatch(/^TLSv1\.[23]$/);
      expect(report.tls.cipher).toMatch(/TLS_|AES|CHACHA/);
      expect(report.tls.certificate).toMatchObject({ subject: 'CN=localhost', issuer: 'CN=localhost', verified: false });
      expect(report.tls.certificate!.expiresInDays).toBeGreaterThan(300);
      expect(report.ehlo).toHaveProperty('starttls');
      expect(report.auth.offered).toEqual(['PLAIN', 'LOGIN', 'XOAUTH2']);
      expect(report.auth.usable).toEqual(['PLAIN', 'LOGIN']);
      expect(report.size).toBe(10 * 1024 * 1024);
      expect(report.extensions).toMatchObject({ pipelining: true, chunking: false, smtputf8: true, '8bitmime': true });
      const text = formatProbe(report);
      expect(text).toMatch(/STARTTLS ok: TLSv1\.\d/);
      expect(text).toMatch(/subject CN=localhost/);
      expect(text).toMatch(/mailstage can use PLAIN LOGIN/);

      const cli = await runCli(['probe', `smtp://127.0.0.1:${server.port}`, '--json']);
      expect(cli.code, cli.stderr).toBe(0);
      expect(JSON.parse(cli.stdout).tls.result).toBe('ok');
    } finally {
      await server.close();
    }
  });

  it('a refused connection is exit 1 with one line; a bad target exit 2', async () => {
    const down = await runCli(['probe', 'smtp://127.0.0.1:1']);
    expect(down.code).toBe(1);
    expect(down.stderr.trim().split('\n')).toHaveLength(1);
    const bad = await runCli(['probe', 'http://example.com']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/expected smtp:\/\/host:port/);
  });
});
