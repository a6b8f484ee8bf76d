/**
 * The dev sink keeps its own SIZE (issue 12, item 7). The attack: a client that does not announce
 * SIZE on MAIL and sends a 70 MB DATA to a sink advertising 50 MB. The sink runs as its own
 * process (`mailstage dev-server`) so its memory can be read from /proc: the peak resident set
 * (VmHWM) may grow by far less than the message, nothing may be stored, and the reply is 552.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startDevServer } from '../../devserver/sink.js';
import { tempDir } from '../runner/helpers.js';
import { spawnCli } from './run.js';
import { smtpTalk } from './smtp-talk.js';

const MB = 1024 * 1024;

/** Peak and current resident set of a process, in bytes (Linux). */
function memoryOf(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

/** Starts `mailstage dev-server` and resolves once it prints where it listens. */
async function startSinkProcess(dir: string, extra: readonly string[] = []): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const child = spawnCli(['dev-server', '--port', '0', '--no-web', '--dir', dir, ...extra]);
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /dev sink on smtp:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`dev-server exited ${code}: ${out}`)));
  });
  return { child, port, output: () => out };
}

let running: ChildProcess | undefined;
afterEach(() => {
  running?.kill('SIGTERM');
  running = undefined;
});

/** `size` bytes of message: a header, then 998-character lines. */
async function sendBody(write: (b: Buffer) => Promise<void>, size: number): Promise<void> {
  const line = Buffer.from(`${'x'.repeat(998)}\r\n`);
  const chunk = Buffer.concat(Array.from({ length: 64 }, () => line)); // ~64 KB
  await write(Buffer.from('Subject: big\r\n\r\n'));
  for (let sent = 0; sent < size; sent += chunk.length) await write(chunk);
}

describe('dev sink SIZE', () => {
  it('a 70 MB DATA against the 50 MB limit: 552, nothing stored, the sink never holds it', async () => {
    const dir = tempDir('mailstage-sink-size-');
    const sink = await startSinkProcess(dir);
    running = sink.child;
    const pid = sink.child.pid!;

    const smtp = await smtpTalk(sink.port);
    expect(await smtp.reply()).toMatch(/^220 /);
    expect(await smtp.command('EHLO attacker.test')).toMatch(/^250[- ]SIZE 52428800\r$/m);
    // A small message first, so whatever loads on first use is loaded before the baseline.
    expect(await smtp.command('MAIL FROM:<a@example.test>')).toMatch(/^250 /);
    expect(await smtp.command('RCPT TO:<b@example.test>')).toMatch(/^250 /);
    expect(await smtp.command('DATA')).toMatch(/^354 /);
    expect(await smtp.command('Subject: small\r\n\r\nfits\r\n.')).toMatch(/^250 .*stored as/);
    const before = memoryOf(pid);

    // No SIZE= on MAIL: the server learns the size only by counting.
    expect(await smtp.command('MAIL FROM:<a@example.test>')).toMatch(/^250 /);
    expect(await smtp.command('RCPT TO:<b@example.test>')).toMatch(/^250 /);
    expect(await smtp.command('DATA')).toMatch(/^354 /);
    await sendBody((b) => smtp.write(b), 70 * MB);
    const verdict = await smtp.command('.');
    const after = memoryOf(pid);
    expect(verdict).toMatch(/^552 /);

    // The session goes on: the next message is taken.
    expect(await smtp.command('MAIL FROM:<a@example.test>')).toMatch(/^250 /);
    expect(await smtp.command('RCPT TO:<b@example.test>')).toMatch(/^250 /);
    expect(await smtp.command('DATA')).toMatch(/^354 /);
    expect(await smtp.command('Subject: after\r\n\r\nstill open\r\n.')).toMatch(/^250 .*stored as/);
    expect(await smtp.command('QUIT')).toMatch(/^221 /);
    smtp.close();

    const files = readdirSync(dir);
    expect(files.filter((f) => f.endsWith('.eml'))).toHaveLength(2);
    expect(files.filter((f) => !f.endsWith('.eml'))).toEqual([]); // no .partial left behind
    const subjects = files.map((f) => /^Subject: (.*)$/m.exec(readFileSync(path.join(dir, f), 'utf8'))![1]).sort();
    expect(subjects).toEqual(['after', 'small']);
    expect(sink.output()).toMatch(/refused: over 52428800 B \(552\), not stored/);

    const growth = after.peak - before.peak;
    console.log(`sink peak RSS ${Math.round(before.peak / MB)} MB → ${Math.round(after.peak / MB)} MB (+${(growth / MB).toFixed(1)} MB) for a 70 MB DATA`);
    // Held whole, the message alone would add 70 MB (it added 220 MB before the fix). What remains
    // is garbage the collector has not reclaimed yet (~40 MB here, the same for 20 MB or 200 MB).
    expect(growth).toBeLessThan(56 * MB);
  }, 120_000);

  it('the memory does not grow with the message: 200 MB over the limit peaks where 70 MB did', async () => {
    const dir = tempDir('mailstage-sink-size-');
    const sink = await startSinkProcess(dir);
    running = sink.child;
    const smtp = await smtpTalk(sink.port);
    await smtp.reply();
    await smtp.command('EHLO attacker.test');
    const oversized = async (size: number): Promise<number> => {
      await smtp.command('MAIL FROM:<a@example.test>');
      await smtp.command('RCPT TO:<b@example.test>');
      await smtp.command('DATA');
      await sendBody((b) => smtp.write(b), size);
      expect(await smtp.command('.')).toMatch(/^552 /);
      return memoryOf(sink.child.pid!).peak;
    };
    const after70 = await oversized(70 * MB);
    const after200 = await oversized(200 * MB);
    smtp.close();
    console.log(`sink peak RSS after 70 MB: ${Math.round(after70 / MB)} MB, after 200 MB more: ${Math.round(after200 / MB)} MB`);
    expect(after200 - after70).toBeLessThan(24 * MB);
    expect(readdirSync(dir)).toEqual([]);
  }, 120_000);

  it('a message announced too big on MAIL is refused before its DATA', async () => {
    const dir = tempDir('mailstage-sink-size-');
    const sink = await startDevServer({ dir, size: 1000 });
    try {
      const smtp = await smtpTalk(sink.port);
      await smtp.reply();
      expect(await smtp.command('EHLO client.test')).toMatch(/^250[- ]SIZE 1000\r$/m);
      expect(await smtp.command('MAIL FROM:<a@example.test> SIZE=1001')).toMatch(/^552 /);
      smtp.close();
    } finally {
      await sink.close();
    }
  });

  it('just over the limit is refused, exactly at it is stored (bytes counted as received)', async () => {
    const dir = tempDir('mailstage-sink-size-');
    const refused: number[] = [];
    const sink = await startDevServer({ dir, size: 1000, onRefused: (r) => refused.push(r.size) });
    try {
      const smtp = await smtpTalk(sink.port);
      await smtp.reply();
      await smtp.command('EHLO client.test');
      const send = async (bytes: number): Promise<string> => {
        await smtp.command('MAIL FROM:<a@example.test>');
        await smtp.command('RCPT TO:<b@example.test>');
        await smtp.command('DATA');
        // "Subject: s\r\n\r\n" is 14 bytes; the rest pads to `bytes` with the final CRLF.
        await smtp.write(`Subject: s\r\n\r\n${'y'.repeat(bytes - 16)}\r\n`);
        return smtp.command('.');
      };
      expect(await send(1000)).toMatch(/^250 /);
      expect(await send(1001)).toMatch(/^552 /);
      smtp.close();
      expect(refused).toEqual([1001]);
      const stored = readdirSync(dir);
      expect(stored).toHaveLength(1);
      const bytes = readFileSync(path.join(dir, stored[0]!));
      // The trace headers, then the 1000 bytes exactly as received.
      expect(bytes.subarray(bytes.indexOf('Subject:')).length).toBe(1000);
    } finally {
      await sink.close();
    }
  });

  it('LMTP: a message over the limit gets 552 for every recipient', async () => {
    const dir = tempDir('mailstage-sink-size-');
    const sink = await startDevServer({ dir, size: 100, lmtp: true });
    try {
      const lmtp = await smtpTalk(sink.port);
      await lmtp.reply();
      await lmtp.command('LHLO client.test');
      await lmtp.command('MAIL FROM:<a@example.test>');
      await lmtp.command('RCPT TO:<b@example.test>');
      await lmtp.command('RCPT TO:<c@example.test>');
      await lmtp.command('DATA');
      await lmtp.write(`Subject: s\r\n\r\n${'z'.repeat(200)}\r\n.\r\n`);
      const first = await lmtp.reply();
      const second = await lmtp.reply();
      expect([first.slice(0, 4), second.slice(0, 4)]).toEqual(['552 ', '552 ']);
      lmtp.close();
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      await sink.close();
    }
  });
});
