import { describe, expect, it } from 'vitest';
import { ConfigError, defineConfig, formatConfig, parseTransportUrl, resolveConfig, splitHostPort, type MailstageConfig } from '../../core/config/index.js';
import { issueLines, thrown } from './helpers.js';

const resolve = (config: unknown) => resolveConfig(config, { processEnv: {} });

async function lines(config: unknown): Promise<string[]> {
  const error = await thrown(() => resolve(config));
  expect(error).toBeInstanceOf(ConfigError);
  expect(error.message).not.toMatch(/\n\s+at /); // never a stack
  expect((error as ConfigError).issues).toHaveLength(issueLines(error.message).length);
  return issueLines(error.message);
}

describe('error messages', () => {
  it('lists every bad path, one per line (three bad fields → three lines)', async () => {
    const error = await thrown(() => resolve({ transport: { port: 'abc', pool: { maxConnections: 0 } }, envelope: { dsn: { ret: 'ALL' } } }));
    expect(error.message).toBe(
      [
        'Invalid config:',
        '  transport.port: expected an integer between 1 and 65535, got "abc"',
        '  transport.pool.maxConnections: expected an integer >= 1, got 0',
        '  envelope.dsn.ret: expected "FULL" or "HDRS", got "ALL"',
      ].join('\n'),
    );
  });

  it('catches a misspelt key and suggests the right one', async () => {
    expect(await lines({ transport: { prot: 25 }, auth: { usr: 'a' }, envlope: {} })).toEqual([
      '  transport.prot: unknown key (did you mean "port"?)',
      '  auth.usr: unknown key (did you mean "user"?)',
      '  envlope: unknown key (did you mean "envelope"?)',
    ]);
    expect(await lines({ transport: { completelyUnrelated: 1 } })).toEqual(['  transport.completelyUnrelated: unknown key']);
  });

  it('reports errors across every section at once', async () => {
    expect(
      await lines({
        plugins: [{ name: 'ok' }, 'auth-plain'],
        transport: { timeouts: { connect: -1 }, retry: { minDelay: 5000, maxDelay: 10, jitter: 2 }, chunking: 'always', url: 'http://x' },
        auth: { mechanisms: ['PLAIN', 'plain', 'BAD MECH'], credentials: { 'bad key': 'x' } },
        envelope: { dsn: { ret: 'ALL', notify: ['NEVER', 'FAILURE'] }, size: 'yes' },
        message: { headers: { 'Bad Header': 'x', 'X-Ok': 'a\r\nBcc: victim@example.com' } },
        debug: 3,
        batch: { source: 'rows.txt', templates: { subject: { pth: 'x' } }, concurrency: 1.5, attachments: [42] },
      }),
    ).toEqual([
      '  plugins[1]: expected a plugin (an object with a non-empty string `name`), got "auth-plain"',
      '  transport.timeouts.connect: expected an integer >= 1, got -1',
      '  transport.chunking: expected "auto" or "never", got "always"',
      '  transport.retry.jitter: expected a number between 0 and 1, got 2',
      '  transport.retry.minDelay: must not exceed maxDelay (10)',
      '  transport.url: expected smtp://[user:pass@]host[:port], smtps://… or lmtp://…',
      '  auth.mechanisms[2]: expected a SASL mechanism name (e.g. PLAIN, CRAM-MD5), got "BAD MECH"',
      '  auth.mechanisms[1]: PLAIN is listed twice',
      '  auth.credentials["bad key"]: expected a credential name (letters, digits, _ . -)',
      '  envelope.dsn.ret: expected "FULL" or "HDRS", got "ALL"',
      '  envelope.dsn.notify: NEVER cannot be combined with SUCCESS, FAILURE or DELAY',
      '  envelope.size: expected true or false, got "yes"',
      '  message.headers["Bad Header"]: expected a header field name (printable ASCII, no spaces or colons)',
      '  message.headers.X-Ok: must not contain line breaks or NUL, got "a\\r\\nBcc: victim@example.com"',
      '  debug: expected 0, 1 or 2, got 3',
      '  batch.source: cannot tell the format from the file name; use .csv, .json or .jsonl, or set format',
      '  batch.templates.subject.pth: unknown key (did you mean "path"?)',
      '  batch.attachments[0]: expected a string, env() or an object, got 42',
      '  batch.concurrency: expected an integer >= 1, got 1.5',
    ]);
  });

  it('reports cross-field problems found only after defaults and merging', async () => {
    expect(
      await lines({
        transport: { host: 'mx.example:2525', port: 25, url: 'smtp://mx.example', retry: { minDelay: 90_000 } },
        auth: { pass: 'x' },
        auth_: 1,
      }),
    ).toEqual([
      // Every problem in one pass: the checks on the file as written, with the typo…
      '  transport.port: conflicts with the port given in transport.host',
      '  auth_: unknown key (did you mean "auth"?)',
      // …and the rest (required fields, url vs host, rules that need defaults) from the merged config.
      '  transport.retry.minDelay: must not exceed maxDelay (60000)',
      '  transport.url: set either transport.url or transport.host, not both',
      '  auth.user: required when auth.pass is set',
    ]);
    expect(
      await lines({
        transport: { host: 'mx.example:2525', url: 'smtp://mx.example', retry: { minDelay: 90_000 } },
        auth: { pass: 'x' },
        batch: { source: { path: 'rows.json', delimiter: ';' }, templates: { subject: 's' } },
      }),
    ).toEqual([
      '  batch.source.delimiter: only applies to csv, not json',
      '  transport.retry.minDelay: must not exceed maxDelay (60000)',
      '  transport.url: set either transport.url or transport.host, not both',
      '  auth.user: required when auth.pass is set',
    ]);
  });

  it('reports a required field missing inside a near-miss union branch', async () => {
    expect(await lines({ batch: { source: 'a.csv', templates: { subject: { file: 'x' } } } })).toEqual([
      '  batch.templates.subject.file: unknown key',
    ]);
    expect(await lines({ batch: { source: 'a.csv', templates: { subject: {} } } })).toEqual([
      '  batch.templates.subject.path: required; expected a string',
    ]);
  });

  it('says what is required', async () => {
    expect(await lines({ batch: {} })).toEqual(['  batch.source: required; expected a string or an object', '  batch.templates: required; expected an object']);
    expect(await lines({ transport: { rateLimit: {} } })).toEqual(['  transport.rateLimit.messages: required; expected an integer >= 1']);
  });

  it('rejects a config that is not an object', async () => {
    expect(await lines('transport: 1')).toEqual(['  (root): expected an object, got "transport: 1"']);
    expect(await lines([1])).toEqual(['  (root): expected an object, got a list']);
  });

  it('accepts a TLS policy a plugin provides', async () => {
    const plugin = { name: 'dane', tlsPolicies: [{ name: 'dane', decide: () => ({ action: 'starttls' as const }) }] };
    expect(resolve({ plugins: [plugin], transport: { tls: 'dane' } }).config.transport?.tls).toBe('dane');
    expect(await lines({ plugins: [plugin], transport: { tls: 'danee' } })).toEqual([
      '  transport.tls: expected none, opportunistic, required, implicit or a TLS policy from an installed plugin; plugins provide dane, got "danee"',
    ]);
  });
});

describe('the resolved config', () => {
  it('applies defaults inside the sections that are present, and nothing else', () => {
    const { config } = resolve({
      transport: { pool: {}, rateLimit: { messages: 10 }, retry: {} },
      batch: { source: 'people.csv', templates: { subject: 'Hello {{name}}', html: { path: 'mail.hbs' } } },
    });
    expect(config.transport).toEqual({
      pool: { maxConnections: 5, maxMessages: 100 },
      rateLimit: { messages: 10, interval: 1000 },
      retry: { attempts: 3, minDelay: 1000, maxDelay: 60_000, factor: 2 },
    });
    expect(config.batch).toEqual({
      source: { path: 'people.csv', format: 'csv' },
      templates: { subject: 'Hello {{name}}', html: { path: 'mail.hbs' } },
      to: 'email',
      concurrency: 4,
      previewDir: '.mailstage/preview',
      previewCount: 10,
      journalDir: '.mailstage/runs',
    });
    expect(resolve({}).config).toEqual({});
  });

  it('normalises shorthands', () => {
    expect(resolve({ transport: { pool: true } }).config.transport?.pool).toEqual({ maxConnections: 5, maxMessages: 100 });
    expect(resolve({ transport: { pool: false } }).config.transport?.pool).toBe(false);
    expect(resolve({ transport: { host: '[::1]:2525' } }).config.transport).toEqual({ host: '::1', port: 2525 });
    expect(resolve({ transport: { host: 'mx:587', port: 587 } }).config.transport).toEqual({ host: 'mx', port: 587 });
    expect(resolve({ auth: { mechanisms: ['cram-md5', 'Plain'] } }).config.auth?.mechanisms).toEqual(['CRAM-MD5', 'PLAIN']);
    const source = (s: unknown) => resolve({ batch: { source: s, templates: { subject: 's' } } }).config.batch?.source;
    expect(source('a.tsv')).toEqual({ path: 'a.tsv', format: 'csv', delimiter: '\t' });
    expect(source('a.JSONL')).toEqual({ path: 'a.JSONL', format: 'jsonl' });
    expect(source({ path: 'rows.txt', format: 'csv', delimiter: ';' })).toEqual({ path: 'rows.txt', format: 'csv', delimiter: ';' });
  });

  it('is frozen, but keeps plugins as the same live objects', () => {
    const plugin = { name: 'p', counter: 0 };
    const { config } = resolve({ plugins: [plugin], transport: { timeouts: { connect: 5 } } });
    expect(config.plugins?.[0]).toBe(plugin);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.transport?.timeouts)).toBe(true);
    expect(Object.isFrozen(plugin)).toBe(false);
  });

  it('accepts a full realistic config', () => {
    const full = defineConfig({
      plugins: [{ name: 'auth-plain' }],
      transport: {
        host: 'smtp.example.com', port: 465, tls: 'implicit', localHostname: 'client.example.com', allowInsecureAuth: false,
        tlsOptions: { servername: 'smtp.example.com', rejectUnauthorized: true, minVersion: 'TLSv1.2', ca: ['-----BEGIN CERTIFICATE-----'] },
        timeouts: { connect: 10_000, greeting: 30_000, command: 30_000, data: 600_000, total: 900_000 },
        chunking: 'auto', pipelining: 'never', pool: { maxConnections: 4, maxMessages: 50, idleTimeout: 30_000 },
        rateLimit: { messages: 100, interval: 60_000 }, retry: { attempts: 5, minDelay: 500, maxDelay: 30_000, factor: 3, jitter: 0.2 },
      },
      auth: { user: 'app', pass: 'x', mechanisms: ['CRAM-MD5', 'PLAIN', 'LOGIN'], credentials: { accessToken: 't' } },
      envelope: { dsn: { ret: 'HDRS', notify: ['FAILURE', 'DELAY'], strict: true }, smtputf8: true, size: true },
      message: { from: 'App <app@example.com>', replyTo: 'help@example.com', headers: { 'X-Mailer': 'mailstage' } },
      debug: 1,
      batch: {
        source: { path: 'rows.csv', delimiter: ';' }, templates: { subject: 'Hi', text: { path: 't.txt' }, html: 'x' },
        attachments: ['files/{{id}}.pdf', { path: 'terms.pdf', filename: 'Terms.pdf' }], from: 'news@example.com', to: '{{first}} <{{email}}>',
        cc: 'manager', bcc: 'audit', concurrency: 8, rateLimit: { messages: 10 }, retry: { attempts: 1 },
        previewDir: 'out/preview', previewCount: 3, journalDir: 'out/runs', messageIdDomain: 'mail.example.com',
      },
      environments: { development: { transport: { host: '127.0.0.1', port: 2525, tls: 'none', tlsOptions: null } } },
    });
    expect(resolve(full).config.transport?.tls).toBe('implicit');
    expect(resolveConfig(full, { env: 'development', processEnv: {} }).config.transport?.tlsOptions).toBeUndefined();
    expect(formatConfig(resolve(full))).toContain('  - "auth-plain"');
  });

  it('rejects misspelt keys at compile time too', () => {
    // @ts-expect-error — `prot` is not a transport option
    const typo: MailstageConfig = { transport: { prot: 25 } };
    // @ts-expect-error — NOTIFY values are a closed set
    const badNotify: MailstageConfig = { envelope: { dsn: { notify: ['ALWAYS'] } } };
    expect([typo, badNotify]).toHaveLength(2);
  });
});

describe('helpers', () => {
  it('splitHostPort', () => {
    expect(splitHostPort('mx.example')).toEqual({ host: 'mx.example' });
    expect(splitHostPort('mx.example:25')).toEqual({ host: 'mx.example', port: 25 });
    expect(splitHostPort('::1')).toEqual({ host: '::1' });
    expect(splitHostPort('[::1]:25')).toEqual({ host: '::1', port: 25 });
    expect(splitHostPort('/run/lmtp.sock')).toEqual({ host: '/run/lmtp.sock' });
    expect(splitHostPort('mx:70000')).toBeUndefined();
    expect(splitHostPort('mx:abc')).toBeUndefined();
  });

  it('parseTransportUrl', () => {
    expect(parseTransportUrl('smtps://a%40b:p%3Ass@mx.example:465')).toEqual({
      protocol: 'smtps', host: 'mx.example', port: 465, user: 'a@b', pass: 'p:ss', implicitTls: true,
    });
    expect(parseTransportUrl('lmtp://[::1]:24')).toEqual({ protocol: 'lmtp', host: '::1', port: 24, implicitTls: false });
    expect(parseTransportUrl('http://mx')).toBeUndefined();
    expect(parseTransportUrl('not a url')).toBeUndefined();
  });
});
