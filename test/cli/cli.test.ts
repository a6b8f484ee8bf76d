import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtpServer, type TestSmtpServer } from '../helpers/smtp-server.js';
import { tempDir, writeCsv } from '../runner/helpers.js';
import { runCli } from './run.js';

/** A JSON config (no imports to resolve) with a batch over rows.csv in `dir`. */
function writeConfig(dir: string, port: number, extra: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'mailstage.config.json');
  writeFileSync(file, JSON.stringify({
    transport: { host: '127.0.0.1', port, tls: 'none', allowInsecureAuth: true, retry: { attempts: 0 } },
    auth: { user: 'user', pass: 'secret-pass' },
    message: { from: 'sender@example.test' },
    batch: {
      source: 'rows.csv',
      templates: { subject: 'Hello {{name}}', text: 'Row {{n}} for {{name}}' },
      previewCount: 2,
    },
    ...extra,
  }));
  return file;
}

/** Exactly one line on stderr, no stack trace. */
function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('mailstage CLI', () => {
  let server: TestSmtpServer;
  beforeAll(async () => {
    server = await startSmtpServer({ allowInsecureAuth: true });
  });
  afterAll(() => server.close());

  it('--help works on every command', async () => {
    for (const args of [[], ['batch'], ['send'], ['probe'], ['config'], ['config', 'check'], ['config', 'print'], ['dev-server'], ['demo']]) {
      const r = await runCli([...args, '--help']);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/Usage: mailstage/);
    }
  }, 60_000);

  it('a dry run (the default) writes previews and sends nothing', async () => {
    const dir = tempDir();
    writeCsv(path.join(dir, 'rows.csv'), { rows: 5 });
    writeConfig(dir, server.port);
    const before = server.messages.length;
    const r = await runCli(['batch', '--no-progress'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Nothing was sent/);
    expect(readdirSync(path.join(dir, '.mailstage/preview'))).toEqual(['row-000001.eml', 'row-000002.eml']);
    expect(server.messages.length).toBe(before);
  });

  it('batch --send delivers and writes the JSON report', async () => {
    const dir = tempDir();
    writeCsv(path.join(dir, 'rows.csv'), { rows: 5 });
    writeConfig(dir, server.port);
    const before = server.messages.length;
    const r = await runCli(['batch', '--send', '--no-progress', '--report', 'out.json'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(server.messages.length - before).toBe(5);
    expect(server.messages.at(-1)!.user).toBe('user');
    const report = JSON.parse(readFileSync(path.join(dir, 'out.json'), 'utf8'));
    expect(report.totals).toMatchObject({ rows: 5, sent: 5 });
  });

  describe('bad input: exit 2 with one line', () => {
    it('missing source file', async () => {
      const dir = tempDir();
      writeConfig(dir, server.port);
      const r = await runCli(['batch'], { cwd: dir });
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toMatch(/^mailstage: source file not found: .*rows\.csv$/);
    });

    it('bad CSV row', async () => {
      const dir = tempDir();
      writeFileSync(path.join(dir, 'rows.csv'), 'email,name,n\na@example.test,A,1\nb@example.test,B\n');
      writeConfig(dir, server.port);
      const r = await runCli(['batch', '--no-progress'], { cwd: dir });
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toMatch(/^mailstage: .*rows\.csv: .*line 3/);
    });

    it('template that does not compile', async () => {
      const dir = tempDir();
      writeCsv(path.join(dir, 'rows.csv'), { rows: 2 });
      writeConfig(dir, server.port);
      const config = JSON.parse(readFileSync(path.join(dir, 'mailstage.config.json'), 'utf8'));
      config.batch.templates.text = 'Hi {{#each items}}';
      writeFileSync(path.join(dir, 'mailstage.config.json'), JSON.stringify(config));
      const r = await runCli(['batch', '--send'], { cwd: dir });
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toMatch(/^mailstage: template text: /);
    });

    it('template variable missing in a row', async () => {
      const dir = tempDir();
      writeFileSync(path.join(dir, 'rows.csv'), 'email,name\na@example.test,A\n');
      writeConfig(dir, server.port);
      const r = await runCli(['batch', '--no-progress'], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stdout).toMatch(/row 1 {2}invalid {2}template text: missing variable "n"/);
      expect(oneLine(r.stderr)).toMatch(/1 row\(s\) are invalid/);
    });

    it('unreachable server', async () => {
      const dir = tempDir();
      writeCsv(path.join(dir, 'rows.csv'), { rows: 2 });
      writeConfig(dir, 1);
      const r = await runCli(['batch', '--send', '--no-progress'], { cwd: dir });
      expect(r.code).toBe(2);
      expect(oneLine(r.stderr)).toMatch(/^mailstage: cannot use the server: .*(ECONNREFUSED|refused)/i);
    });

    it('invalid config', async () => {
      const dir = tempDir();
      writeFileSync(path.join(dir, 'mailstage.config.json'), JSON.stringify({ transport: { port: 'x', prot: 1 } }));
      for (const args of [['batch'], ['config', 'check']]) {
        const r = await runCli(args, { cwd: dir });
        expect(r.code).toBe(2);
        // One line per bad path, every problem at once, no stack.
        expect(r.stderr.trim().split('\n')).toEqual([
          expect.stringMatching(/^mailstage: Invalid config in .*mailstage\.config\.json:$/),
          '  transport.port: expected an integer between 1 and 65535, got "x"',
          '  transport.prot: unknown key (did you mean "port"?)',
        ]);
      }
    });

    it('unknown option and --queue/--status', async () => {
      expect((await runCli(['batch', '--frobnicate'])).code).toBe(2);
      const dir = tempDir();
      writeConfig(dir, server.port);
      // Misuse of the queue flags is caught before Redis is contacted (test/queue/ has the rest).
      const misuse: [string[], RegExp][] = [
        [['--status', 'x'], /--status needs --queue/],
        [['--queue', 'http://127.0.0.1:6379', '--send'], /redis:\/\/ or rediss:\/\//],
        [['--queue', 'redis://127.0.0.1:6379', '--send', '--resume'], /--resume and --skip-unknown are for in-process runs/],
        [['--run', 'r1'], /--run only applies with --queue and --send/],
      ];
      for (const [flags, message] of misuse) {
        const r = await runCli(['batch', ...flags], { cwd: dir });
        expect(r.code).toBe(2);
        expect(oneLine(r.stderr)).toMatch(message);
      }
    });

    it('--debug adds the stack trace', async () => {
      const dir = tempDir();
      writeConfig(dir, server.port);
      const r = await runCli(['--debug', 'batch'], { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/\n\s+at /);
    });
  });

  it('config print masks secrets; --json is JSON; config check names file and environment', async () => {
    const dir = tempDir();
    writeConfig(dir, server.port, { environments: { staging: { transport: { port: 2600 } } } });
    const text = await runCli(['config', 'print'], { cwd: dir });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/pass: "\*\*\*\*"/);
    expect(text.stdout).not.toContain('secret-pass');
    const json = await runCli(['--env', 'staging', 'config', 'print', '--json'], { cwd: dir });
    const parsed = JSON.parse(json.stdout);
    expect(parsed.auth.pass).toBe('****');
    expect(parsed.transport.port).toBe(2600);
    const check = await runCli(['config', 'check', '--env', 'staging'], { cwd: dir });
    expect(check.code).toBe(0);
    expect(check.stdout).toMatch(/^config ok: .*mailstage\.config\.json, environment staging/);
  });

  it('send: one message from flags, and a .eml on stdin', async () => {
    const dir = tempDir();
    writeConfig(dir, server.port);
    const before = server.messages.length;
    const a = await runCli(['send', '--to', 'one@example.test', '--subject', 'Flags', '--text', 'from flags'], { cwd: dir });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/^sent <.*> to one@example.test: 250/);
    const eml = 'From: a@example.test\r\nTo: two@example.test\r\nBcc: hidden@example.test\r\nSubject: Stdin\r\n\r\nfrom stdin\r\n';
    const b = await runCli(['send'], { cwd: dir, input: eml });
    expect(b.code, b.stderr).toBe(0);
    const [m1, m2] = server.messages.slice(before);
    expect(m1!.data.toString()).toMatch(/Subject: Flags/);
    expect(m2!.rcptTo.map((r) => r.address).sort()).toEqual(['hidden@example.test', 'two@example.test']);
    expect(m2!.data.toString()).not.toMatch(/Bcc:/);
    const c = await runCli(['send', '--subject', 'x'], { cwd: dir });
    expect(c.code).toBe(2);
    expect(oneLine(c.stderr)).toMatch(/--to/);
  });
});
