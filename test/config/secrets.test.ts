import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, env, formatConfig, isEnvRef, loadConfig, MASK, resolveConfig, type MailstageConfig } from '../../core/config/index.js';
import { defineImport, fixture, issueLines, removeFixtures, thrown } from './helpers.js';

afterAll(removeFixtures);

const SECRET = 'S3cr3t-Pa55w0rd-do-not-leak';
const TOKEN = 'ya29.token-do-not-leak';

/** Every text a user could see from this error. */
function visibleText(error: Error): string {
  return [error.message, ...((error as ConfigError).issues ?? []).map((i) => `${i.path} ${i.message}`)].join('\n');
}

describe('env()', () => {
  it('returns a branded marker, and rejects a bad variable name', () => {
    const ref = env('SMTP_PASS');
    expect(isEnvRef(ref)).toBe(true);
    expect(isEnvRef({ name: 'SMTP_PASS' })).toBe(false);
    expect(Object.keys(ref)).toEqual([]);
    expect(JSON.stringify({ pass: ref })).toBe('{"pass":"env(\\"SMTP_PASS\\")"}');
    expect(() => env('not a name')).toThrow(TypeError);
  });

  it('resolves at load time, anywhere a string is, and records the paths as secrets', () => {
    const loaded = resolveConfig(
      {
        transport: { host: env('SMTP_HOST') },
        auth: { user: env('SMTP_USER'), pass: env('SMTP_PASS'), credentials: { accessToken: env('TOKEN') } },
        message: { headers: { 'X-Tenant': env('TENANT') } },
        batch: { source: 'rows.csv', templates: { subject: 'x' }, attachments: [env('ATTACHMENT')] },
      },
      { processEnv: { SMTP_HOST: 'mx.local:2525', SMTP_USER: 'app', SMTP_PASS: SECRET, TOKEN, TENANT: 't1', ATTACHMENT: 'a.pdf' } },
    );
    expect(loaded.config.transport).toEqual({ host: 'mx.local', port: 2525 });
    expect(loaded.config.auth).toEqual({ user: 'app', pass: SECRET, credentials: { accessToken: TOKEN } });
    expect(loaded.config.message?.headers).toEqual({ 'X-Tenant': 't1' });
    expect(loaded.config.batch?.attachments).toEqual(['a.pdf']);
    expect([...loaded.secrets].sort()).toEqual(
      ['auth.credentials.accessToken', 'auth.pass', 'auth.user', 'batch.attachments[0]', 'message.headers.X-Tenant', 'transport.host'].sort(),
    );
  });

  it('uses the default when the variable is unset or empty', () => {
    const config: MailstageConfig = { auth: { user: 'u', pass: env('SMTP_PASS', { default: 'fallback' }) } };
    expect(resolveConfig(config, { processEnv: {} }).config.auth?.pass).toBe('fallback');
    expect(resolveConfig(config, { processEnv: { SMTP_PASS: '' } }).config.auth?.pass).toBe('fallback');
    expect(resolveConfig(config, { processEnv: { SMTP_PASS: 'set' } }).config.auth?.pass).toBe('set');
    expect(resolveConfig(config, { processEnv: {} }).secrets.has('auth.pass')).toBe(true);
  });

  it('names every missing variable and where it is used', async () => {
    const error = await thrown(() =>
      resolveConfig({ auth: { user: env('SMTP_USER'), pass: env('SMTP_PASS') }, message: { from: env('FROM', { default: 'a@b.c' }) } }, { processEnv: {} }),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe(
      [
        'Missing environment variables:',
        '  auth.user: environment variable SMTP_USER is not set (env("SMTP_USER") has no default)',
        '  auth.pass: environment variable SMTP_PASS is not set (env("SMTP_PASS") has no default)',
      ].join('\n'),
    );
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual(['auth.user', 'auth.pass']);
  });

  it('works in a TypeScript config loaded from disk (markers cross module instances)', async () => {
    const dir = await fixture({});
    await fs.writeFile(
      path.join(dir, 'mailstage.config.ts'),
      `import { defineConfig, env } from '${defineImport(dir)}';
export default defineConfig({
  auth: { user: 'app', pass: env('FIXTURE_SECRET') },
  environments: { production: { auth: { credentials: { accessToken: env('FIXTURE_TOKEN') } } } },
});
`,
    );
    const loaded = await loadConfig({ cwd: dir, env: 'production', processEnv: { FIXTURE_SECRET: SECRET, FIXTURE_TOKEN: TOKEN } });
    expect(loaded.config.auth).toEqual({ user: 'app', pass: SECRET, credentials: { accessToken: TOKEN } });
    const printed = formatConfig(loaded) + formatConfig(loaded, { json: true });
    expect(printed).not.toContain(SECRET);
    expect(printed).not.toContain(TOKEN);

    const missing = await thrown(() => loadConfig({ cwd: dir, env: 'production', processEnv: { FIXTURE_SECRET: SECRET } }));
    expect(missing.message).toContain('auth.credentials.accessToken: environment variable FIXTURE_TOKEN is not set');
    expect(missing.message).toContain(path.join(dir, 'mailstage.config.ts'));
    expect(missing.message).toContain('(environment "production")');
  });
});

describe('secrets are masked in formatConfig', () => {
  const loaded = resolveConfig(
    {
      plugins: [{ name: 'auth-plain' }, { name: 'dsn' }],
      transport: { host: env('SMTP_HOST'), port: 587, tls: 'required', tlsOptions: { key: 'LITERAL-PRIVATE-KEY' } },
      auth: { user: 'app', pass: env('SMTP_PASS'), credentials: { accessToken: env('TOKEN') } },
    },
    { processEnv: { SMTP_HOST: 'smtp.secret-host.example', SMTP_PASS: SECRET, TOKEN } },
  );

  it('as text', () => {
    const text = formatConfig(loaded);
    for (const hidden of [SECRET, TOKEN, 'smtp.secret-host.example', 'LITERAL-PRIVATE-KEY']) expect(text).not.toContain(hidden);
    expect(text).toContain(`pass: "${MASK}"`);
    expect(text).toContain(`accessToken: "${MASK}"`);
    expect(text).toContain(`host: "${MASK}"`);
    expect(text).toContain('user: "app"');
    expect(text).toContain('port: 587');
    expect(text).toContain('  - "auth-plain"');
  });

  it('as JSON', () => {
    const json = JSON.parse(formatConfig(loaded, { json: true })) as Record<string, any>;
    expect(json['auth']).toEqual({ user: 'app', pass: MASK, credentials: { accessToken: MASK } });
    expect(json['transport']['host']).toBe(MASK);
    expect(json['transport']['tlsOptions']['key']).toBe(MASK);
    expect(json['plugins']).toEqual(['auth-plain', 'dsn']);
  });

  it('masks the password inside transport.url', () => {
    const withUrl = resolveConfig({ transport: { url: `smtps://app:${SECRET}@mx.example.com:465` } }, { processEnv: {} });
    const text = formatConfig(withUrl);
    expect(text).not.toContain(SECRET);
    expect(text).toContain(`url: "smtps://app:${MASK}@mx.example.com:465"`);
  });
});

describe('no error text contains a secret', () => {
  const cases: readonly (readonly [string, MailstageConfig, RegExp])[] = [
    ['a secret in a field with a format', { transport: { host: env('S') } }, /transport\.host: must not contain spaces/],
    ['a secret as an unknown TLS policy', { transport: { tls: env('S') } }, /transport\.tls: must not contain spaces or line breaks, got a secret value \(not shown\)/],
    ['a secret as a header value with a line break', { message: { headers: { 'X-A': env('S') } } }, /message\.headers\.X-A: must not contain line breaks/],
    ['a secret url that does not parse', { transport: { url: env('S') } }, /transport\.url: expected smtp:\/\//],
    ['a secret mechanism name', { auth: { mechanisms: [env('S')] } }, /auth\.mechanisms\[0\]: expected a SASL mechanism name/],
    ['a secret source with no known extension', { batch: { source: env('S'), templates: { subject: 's' } } }, /batch\.source: cannot tell the format/],
    ['a secret domain', { batch: { source: 'a.csv', templates: { subject: 's' }, messageIdDomain: env('S') } }, /batch\.messageIdDomain: expected a domain name/],
  ];
  it.each(cases)('%s', async (_label, config, expected) => {
    const value = `${SECRET} with spaces\r\nand a break`;
    const error = await thrown(() => resolveConfig(config, { processEnv: { S: value } }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toMatch(expected);
    const text = visibleText(error);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('with spaces');
  });

  it('a literal password of the wrong type in an inactive environment', async () => {
    const error = await thrown(() =>
      resolveConfig({ environments: { production: { auth: { pass: 12345678 as unknown as string } } } }, { processEnv: {} }),
    );
    expect(issueLines(error.message)).toEqual(['  environments.production.auth.pass: expected a string or env(), got a secret value (not shown)']);
    expect(error.message).not.toContain('12345678');
  });

  it('a literal url with a password that is malformed', async () => {
    const error = await thrown(() => resolveConfig({ transport: { url: `ftp://app:${SECRET}@host` } }, { processEnv: {} }));
    expect(error.message).toContain('transport.url:');
    expect(error.message).not.toContain(SECRET);
  });

  it('a secret next to other errors whose values are shown', async () => {
    const error = await thrown(() => resolveConfig({ transport: { port: 70000, tls: env('S') }, debug: 7 as 1 }, { processEnv: { S: SECRET } }));
    expect(issueLines(error.message)).toEqual([
      '  transport.port: expected an integer between 1 and 65535, got 70000',
      '  debug: expected 0, 1 or 2, got 7',
      '  transport.tls: expected none, opportunistic, required, implicit or a TLS policy from an installed plugin, got a secret value (not shown)',
    ]);
    expect(visibleText(error)).not.toContain(SECRET);
  });
});
