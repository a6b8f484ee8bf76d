/**
 * Rule 3: bodies never need to fit in memory. A 200 MB body (every line starting with a dot) is
 * sent from a child process through the built package; its peak RSS must stay under 150 MB, and
 * the sink (smtp-server, which un-stuffs) must receive every octet.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import type { AddressInfo } from 'node:net';

const run = promisify(execFile);

describe('streaming', () => {
  it('a 200 MB streamed body goes through with peak RSS under 150 MB', async () => {
    let received = 0;
    let dotLines = 0;
    let carry = '';
    const sink = new SMTPServer({
      logger: false, authOptional: true, hideSTARTTLS: true, disableReverseLookup: true,
      onData(stream, _session, cb) {
        stream.on('data', (c: Buffer) => {
          received += c.length;
          // Count lines that start with a dot after un-stuffing (each must have exactly one).
          const text = carry + c.toString('latin1');
          const lines = text.split('\r\n');
          carry = lines.pop()!;
          for (const l of lines) if (l.startsWith('.') && !l.startsWith('..')) dotLines++;
        });
        stream.on('end', () => cb());
      },
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
    const port = ((sink as unknown as { server: { address(): AddressInfo } }).server.address()).port;
    try {
      const { stdout } = await run(process.execPath, ['test/fixtures/send-large.mjs', String(port), '200'], { timeout: 120_000 });
      const report = JSON.parse(stdout) as { code: number; bytes: number; maxRssMb: number; seconds: number; cpuMsPerMb: number };
      expect(report.code).toBe(250);
      expect(received).toBe(report.bytes);
      expect(dotLines).toBe(report.bytes / 80);
      expect(report.maxRssMb).toBeLessThan(150);
      console.log(`200 MB streamed: ${report.seconds} s, peak RSS ${report.maxRssMb.toFixed(0)} MB, ${report.cpuMsPerMb.toFixed(2)} ms CPU/MB`);
    } finally {
      await new Promise<void>((r) => sink.close(() => r()));
    }
  }, 150_000);
});
