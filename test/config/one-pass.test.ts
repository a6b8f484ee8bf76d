/**
 * Config errors come in one pass (issue 17 item 4): a user fixes every problem in one edit. Also the
 * syntax error with its position and line, the "not found" message that says where it looked, and
 * credentials smuggled into transport.host (issue 12 item 8).
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, resolveConfig } from '../../core/config/index.js';
import { fixture, removeFixtures } from './helpers.js';

afterAll(removeFixtures);

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config errors in one pass', () => {
  it('a type error, a plugin-dependent TLS name and a bad address are reported together', () => {
    const e = errorOf(() => resolveConfig({
      transport: { host: 'smtp.example.com', port: 'x', tls: 'sometimes' },
      message: { from: 'not an address' },
    }));
    expect(e.issues.map((i) => i.path)).toEqual(['transport.port', 'transport.tls', 'message.from']);
    expect(e.message).toMatch(/transport\.port: expected an integer between 1 and 65535, got "x"/);
    expect(e.message).toMatch(/transport\.tls: expected none, opportunistic, required, implicit or a TLS policy/);
    expect(e.message).toMatch(/message\.from: not a valid address/);
  });

  it('a missing env() variable is reported with the schema problems, not instead of them', () => {
    const e = errorOf(() => resolveConfig(
      { transport: { port: 0 }, auth: { user: 'u', pass: { [Symbol.for('mailstage.config.env')]: { name: 'NOPE_PASS' } } } },
      { processEnv: {} },
    ));
    expect(e.issues.map((i) => i.path).sort()).toEqual(['auth.pass', 'transport.port']);
    expect(e.message).toMatch(/environment variable NOPE_PASS is not set/);
  });

  it('one mistake gives one line, even when two passes see it', () => {
    const e = errorOf(() => resolveConfig({ transport: { prot: 25 } }));
    expect(e.issues).toHaveLength(1);
    expect(e.issues[0]!.path).toBe('transport.prot');
  });

  it('checks stated addresses but leaves templated ones to the rows', () => {
    expect(() => resolveConfig({
      message: { from: 'Mailer <mailer@example.com>', replyTo: 'a@example.com, b@example.com' },
      batch: { source: 'r.csv', templates: { subject: 's' }, from: '{{sender}}' },
    })).not.toThrow();
    const e = errorOf(() => resolveConfig({ message: { from: 'a@example.com, b@example.com' } }));
    expect(e.message).toMatch(/message\.from: expected one address, got 2/);
  });

  it('refuses user info in transport.host, without printing it', () => {
    const e = errorOf(() => resolveConfig({ transport: { host: 'app:hunter22@smtp.example.com:587' } }));
    expect(e.message).toMatch(/transport\.host: must not carry user info .*put credentials in auth/);
    expect(e.message).not.toContain('hunter22');
  });
});

describe('loading a file', () => {
  it('a syntax error names file:line:column and shows the line', async () => {
    const dir = await fixture({
      'mailstage.config.ts': "export default {\n  transport: { host: 'smtp.example.com' tls: 'none' },\n};\n",
    });
    const file = path.join(dir, 'mailstage.config.ts');
    const e = await loadConfig({ cwd: dir }).then(() => undefined, (error: unknown) => error);
    expect(e).toBeInstanceOf(ConfigError);
    const lines = (e as ConfigError).message.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^Cannot load config ${file.replace(/[.]/g, '\\.')}:2:\\d+: .*Unexpected token`));
    expect(lines[1]).toBe("  2 |   transport: { host: 'smtp.example.com' tls: 'none' },");
    expect(lines[2]).toMatch(/^ {4}\| +\^$/);
  });

  it('"not found" says where it looked and what to do', async () => {
    const dir = await fixture({});
    const e = await loadConfig({ cwd: dir }).then(() => undefined, (error: unknown) => error);
    expect((e as Error).message).toMatch(/No mailstage config found/);
    expect((e as Error).message).toContain(`looked in: ${dir}`);
    expect((e as Error).message).toMatch(/--config <file>/);
    expect((e as Error).message).toMatch(/config\.example\.ts/);
  });
});
