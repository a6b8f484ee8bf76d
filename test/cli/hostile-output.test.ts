/**
 * Terminal escape injection (issue 12, attack 6): a server that puts ESC/CSI/OSC sequences, C1
 * controls and bidi overrides in its greeting, its EHLO keywords and its error replies. The test
 * reads the CLI's real stdout and stderr bytes: no control character other than the newlines the
 * CLI writes itself may reach the terminal, and the escaped text must still be there to read.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './run.js';

const ESC = '\x1b';
const OSC_TITLE = `${ESC}]0;pwned${'\x07'}`;
const CLEAR = `${ESC}[2J${ESC}[H`;
const C1_CSI = '\u009b31m';
const BIDI = '\u202e';

/** Bytes that must never reach the terminal (\n is the CLI's own line break). */
const CONTROLS = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** A hostile SMTP server: every line it can say carries a sequence. */
function hostileServer(): Promise<net.Server & { port: number }> {
  const server = net.createServer((socket) => {
    socket.setEncoding('latin1');
    socket.write(`220 evil.example ESMTP ${CLEAR}${OSC_TITLE}\r\n`);
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let i = buffer.indexOf('\r\n'); i >= 0; i = buffer.indexOf('\r\n')) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 2);
        const verb = line.split(' ')[0]!.toUpperCase();
        if (verb === 'EHLO') socket.write(`250-evil.example ${ESC}[31mred\r\n250-XFOO ${ESC}]52;c;ZWNobyBvd25lZA==${"\x07"} ${ESC}[31mred\r\n250 8BITMIME\r\n`);
        else if (verb === 'MAIL') socket.write(Buffer.from(`550 5.7.1 go away ${CLEAR}${BIDI}txt.exe ${C1_CSI}\r\n`, 'utf8'));
        else if (verb === 'QUIT') socket.end('221 bye\r\n');
        else socket.write('250 ok\r\n');
      }
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve(Object.assign(server, { port: (server.address() as net.AddressInfo).port }));
  }));
}

describe('CLI output: server text is escaped before it reaches the terminal', () => {
  let server: net.Server & { port: number };
  beforeAll(async () => {
    server = await hostileServer();
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('probe prints the greeting and EHLO keywords escaped', async () => {
    const r = await runCli(['probe', `smtp://127.0.0.1:${server.port}`]);
    expect(r.stdout).toContain('220 evil.example ESMTP \\x1B[2J\\x1B[H\\x1B]0;pwned\\x07');
    expect(r.stdout).toContain('\\x1B[31mred');
    expect(r.stdout).not.toMatch(CONTROLS);
    expect(r.stderr).not.toMatch(CONTROLS);
  });

  it('probe --json is valid JSON with the sequences as \\u escapes', async () => {
    const r = await runCli(['probe', '--json', `smtp://127.0.0.1:${server.port}`]);
    expect(r.stdout).not.toMatch(CONTROLS);
    const report = JSON.parse(r.stdout) as { greeting: { text: string } };
    expect(report.greeting.text).toContain(CLEAR);
  });

  it('a send refused with a hostile 550 prints the reply escaped, on one line, exit 1', async () => {
    const r = await runCli([
      'send', '--server', `smtp://127.0.0.1:${server.port}`, '--from', 'a@example.test', '--to', 'b@example.test',
      '--subject', 'hi', '--text', 'hello',
    ], { cwd: '/' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('go away \\x1B[2J\\x1B[H\\u202Etxt.exe \\x9B31m');
    expect(r.stderr).not.toMatch(CONTROLS);
    expect(r.stdout).not.toMatch(CONTROLS);
  });
});
