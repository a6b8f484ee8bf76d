/**
 * A newcomer's first send: `mailstage dev-server` prints a `send` command, and that command, run as
 * printed, delivers to it. Then the TLS flags of `send` against the sink's self-signed certificate,
 * and a piped .eml getting Message-ID and Date — each checked in the bytes the sink stored.
 */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer, type StoredMessage } from '../../devserver/sink.js';
import { startSmtpServer } from '../helpers/smtp-server.js';
import { tempDir } from '../runner/helpers.js';
import { runCli, spawnCli } from './run.js';

const children: ChildProcess[] = [];
const sinks: DevServer[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGTERM');
  await Promise.all(sinks.splice(0).map((s) => s.close()));
});

/** Splits a printed command line the way sh does for what we print: words and '…' quotes. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|(\S+)/g)) words.push(m[1] ?? m[2]!);
  return words;
}

async function sinkWithLog(): Promise<{ sink: DevServer; stored: StoredMessage[]; dir: string }> {
  const dir = tempDir('mailstage-send-');
  const stored: StoredMessage[] = [];
  const sink = await startDevServer({ dir, onMessage: (m) => stored.push(m) });
  sinks.push(sink);
  return { sink, stored, dir };
}

/** The message as stored, without the trace headers the sink puts on top. */
function storedMessage(file: string): string {
  return readFileSync(file, 'latin1').replace(/^Return-Path: .*\r\n(Delivered-To: .*\r\n)*/, '');
}

describe('the first send to the dev sink', () => {
  it('dev-server prints its inbox and a send command; run as printed, it delivers over STARTTLS', async () => {
    const dir = tempDir('mailstage-send-');
    const child = spawnCli(['dev-server', '--port', '0', '--web-port', '0', '--dir', dir]);
    children.push(child);
    let out = '';
    const banner = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/^try: .*\n/m.test(out)) resolve(out);
      });
      child.once('exit', (code) => reject(new Error(`dev-server exited ${code}: ${out}`)));
    });
    const inbox = /^inbox: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(banner)?.[1];
    expect(inbox, banner).toBeDefined();
    const printed = /^try: (.*)$/m.exec(banner)![1]!;
    const words = shellWords(printed);
    expect(words.slice(0, 3)).toEqual(['npx', 'mailstage', 'send']);

    const sent = await runCli(words.slice(2), { cwd: dir });
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toMatch(/^sent <[^>]+@example\.test> to you@example\.test: 250 Ok: stored as \S+\.eml\n$/);
    // The sink's own log line says the session was encrypted.
    await expect.poll(() => out).toMatch(/<dev@example\.test> → you@example\.test {2}"Hello from mailstage" {2}\d+ B TLS/);
    const list = (await (await fetch(`${inbox}api/messages`)).json()) as { subject: string; from: string; to: string[] }[];
    expect(list).toMatchObject([{ subject: 'Hello from mailstage', from: 'dev@example.test', to: ['you@example.test'] }]);
  });

  it('without --insecure the self-signed certificate is refused, and the error says what to do', async () => {
    const { sink, stored } = await sinkWithLog();
    const r = await runCli(['send', '--server', `smtp://127.0.0.1:${sink.port}`, '--tls', 'required', '--from', 'a@example.test', '--to', 'b@example.test', '--subject', 's', '--text', 't']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/self[- ]signed certificate.*add --insecure to skip certificate verification/);
    expect(stored).toEqual([]);
  });

  it('--tls none|required and the URL form (?tls=, ?insecure=) choose what happens on the wire', async () => {
    const { sink, stored } = await sinkWithLog();
    const base = ['--from', 'a@example.test', '--to', 'b@example.test', '--text', 't'];
    const url = `smtp://127.0.0.1:${sink.port}`;
    const runs: [string[], boolean][] = [
      [['--server', url, '--tls', 'none', '--subject', 'plain'], false],
      [['--server', url, '--tls', 'required', '--insecure', '--subject', 'starttls'], true],
      [['--server', `${url}?tls=none`, '--subject', 'url-plain'], false],
      [['--server', `${url}?tls=required&insecure=true`, '--subject', 'url-starttls'], true],
    ];
    for (const [flags] of runs) {
      const r = await runCli(['send', ...flags, ...base]);
      expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(0);
    }
    expect(stored.map((m) => [m.subject, m.secure])).toEqual(runs.map(([flags, secure]) => [flags[flags.indexOf('--subject') + 1], secure]));
  });

  it('smtps:// and --tls implicit: TLS from the first byte', async () => {
    const server = await startSmtpServer({ secure: true });
    try {
      for (const flags of [['--server', `smtps://127.0.0.1:${server.port}`], ['--server', `smtp://127.0.0.1:${server.port}`, '--tls', 'implicit']]) {
        const r = await runCli(['send', ...flags, '--insecure', '--from', 'a@example.test', '--to', 'b@example.test', '--subject', 'tls', '--text', 't']);
        expect(r.code, r.stderr).toBe(0);
      }
      expect(server.messages.map((m) => m.secure)).toEqual([true, true]);
    } finally {
      await server.close();
    }
  });

  it('bad TLS input is exit 2 with one line naming it', async () => {
    const { sink } = await sinkWithLog();
    const base = ['--from', 'a@example.test', '--to', 'b@example.test', '--subject', 's', '--text', 't'];
    const cases: [string[], RegExp][] = [
      [['--tls', 'sometimes', '--server', `smtp://127.0.0.1:${sink.port}`], /--tls must be one of none, opportunistic, required, implicit, got "sometimes"/],
      [['--server', `smtp://127.0.0.1:${sink.port}?verify=no`], /unknown URL parameter "verify=no"/],
      [['--server', `smtps://127.0.0.1:${sink.port}?tls=required`], /smtps:\/\/ is TLS from the first byte; tls=required contradicts it/],
      [['--server', `smtps://127.0.0.1:${sink.port}`, '--tls', 'none'], /--tls none contradicts --server smtps:\/\//],
    ];
    for (const [flags, message] of cases) {
      const r = await runCli(['send', ...flags, ...base]);
      expect(r.code, flags.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('send: a .eml on stdin', () => {
  it('without Message-ID and Date it gets both; the rest arrives byte for byte', async () => {
    const { sink, stored } = await sinkWithLog();
    const eml = 'From: Ann <ann@example.test>\r\nTo: bob@example.test\r\nBcc: hidden@example.test\r\nSubject: piped\r\nX-Custom:   spaced  value\r\n\r\nline one\r\n.leading dot\r\n';
    const r = await runCli(['send', '--server', `smtp://127.0.0.1:${sink.port}`, '--tls', 'none'], { input: eml });
    expect(r.code, r.stderr).toBe(0);
    const messageId = /^sent (<[^>]+>) to bob@example\.test, hidden@example\.test: 250/.exec(r.stdout)?.[1];
    expect(messageId, r.stdout).toMatch(/^<[0-9a-f-]{36}@example\.test>$/);
    const text = storedMessage(stored[0]!.file);
    const date = /^Date: (.*)\r\n/m.exec(text)![1]!;
    expect(Math.abs(Date.parse(date) - Date.now())).toBeLessThan(5 * 60_000);
    expect(date).toMatch(/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    expect(text).toBe(`Message-ID: ${messageId}\r\nDate: ${date}\r\n${eml.replace('Bcc: hidden@example.test\r\n', '')}`);
  });

  it('with both it is sent untouched', async () => {
    const { sink, stored, dir } = await sinkWithLog();
    const eml = 'Message-ID: <fixed@example.test>\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\nFrom: a@example.test\r\nTo: b@example.test\r\nSubject: as is\r\n\r\nbody\r\n';
    const r = await runCli(['send', '--server', `smtp://127.0.0.1:${sink.port}?tls=none`], { input: eml });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^sent <fixed@example\.test> to b@example\.test: 250/);
    expect(storedMessage(stored[0]!.file)).toBe(eml);
    expect(readdirSync(dir)).toEqual([path.basename(stored[0]!.file)]);
  });
});
