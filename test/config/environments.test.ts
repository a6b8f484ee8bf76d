import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, env, loadConfig, mergeOverlay, resolveConfig, type MailstageConfig } from '../../core/config/index.js';
import { fixture, issueLines, removeFixtures, thrown } from './helpers.js';

afterAll(removeFixtures);
afterEach(() => {
  vi.unstubAllEnvs();
});

const pluginA = { name: 'a' };
const pluginB = { name: 'b' };
const pluginC = { name: 'c' };

const config: MailstageConfig = {
  plugins: [pluginA, pluginB],
  transport: { host: 'localhost', port: 2525, tls: 'none', timeouts: { connect: 1000, command: 2000 }, pool: { maxConnections: 2 } },
  auth: { user: 'dev', pass: 'devpass', mechanisms: ['PLAIN', 'LOGIN'] },
  message: { from: 'dev@example.test', headers: { 'X-App': 'demo', 'X-Env': 'base' } },
  environments: {
    staging: { transport: { port: 2526, timeouts: { connect: 5000 } }, auth: { mechanisms: ['CRAM-MD5'] }, message: { headers: { 'X-Env': 'staging' } } },
    production: { plugins: [pluginC], transport: { host: 'smtp.example.com', port: 587, tls: 'required' }, auth: null },
    test: { debug: 2 },
  },
};

describe('mergeOverlay', () => {
  it('merges objects, replaces scalars and arrays, drops null, ignores undefined', () => {
    expect(
      mergeOverlay(
        { a: { b: 1, c: [1, 2], d: 'x' }, e: 1, keep: true },
        { a: { b: 2, c: [3], d: undefined }, e: null, f: { g: null, h: 1 } },
      ),
    ).toEqual({ a: { b: 2, c: [3], d: 'x' }, keep: true, f: { h: 1 } });
  });

  it('does not modify its inputs', () => {
    const base = { a: { b: 1 } };
    const overlay = { a: { c: 2 } };
    mergeOverlay(base, overlay);
    expect(base).toEqual({ a: { b: 1 } });
    expect(overlay).toEqual({ a: { c: 2 } });
  });

  it('replaces env() markers rather than merging into them', () => {
    const merged = mergeOverlay({ pass: env('A') }, { pass: env('B') }) as { pass: unknown };
    expect(resolveConfig({ auth: { user: 'u', pass: merged.pass as never } }, { processEnv: { A: 'aaaa', B: 'bbbb' } }).config.auth?.pass).toBe('bbbb');
  });
});

describe('environments', () => {
  it('uses the base when no environment is chosen, and drops `environments` from the result', () => {
    const loaded = resolveConfig(config, { processEnv: {} });
    expect(loaded.environment).toBeUndefined();
    expect(loaded.config.transport?.port).toBe(2525);
    expect(loaded.config).not.toHaveProperty('environments');
  });

  it('deep-merges the chosen overlay over the base (objects merged, arrays replaced)', () => {
    const loaded = resolveConfig(config, { env: 'staging', processEnv: {} });
    expect(loaded.environment).toBe('staging');
    expect(loaded.config.transport).toEqual({
      host: 'localhost',
      port: 2526,
      tls: 'none',
      timeouts: { connect: 5000, command: 2000 },
      pool: { maxConnections: 2, maxMessages: 100 },
    });
    expect(loaded.config.auth?.mechanisms).toEqual(['CRAM-MD5']);
    expect(loaded.config.message?.headers).toEqual({ 'X-App': 'demo', 'X-Env': 'staging' });
    expect(loaded.config.plugins).toEqual([pluginA, pluginB]);
  });

  it('replaces plugins as a whole, keeps plugin identity, and removes a section set to null', () => {
    const loaded = resolveConfig(config, { env: 'production', processEnv: {} });
    expect(loaded.config.plugins).toHaveLength(1);
    expect(loaded.config.plugins?.[0]).toBe(pluginC);
    expect(loaded.config.auth).toBeUndefined();
    expect(loaded.config.transport?.tls).toBe('required');
  });

  it('is chosen by the env option first, then MAILSTAGE_ENV, then NODE_ENV', () => {
    const all = { MAILSTAGE_ENV: 'staging', NODE_ENV: 'test' };
    expect(resolveConfig(config, { env: 'production', processEnv: all }).environment).toBe('production');
    expect(resolveConfig(config, { processEnv: all }).environment).toBe('staging');
    expect(resolveConfig(config, { processEnv: { NODE_ENV: 'test' } }).environment).toBe('test');
    expect(resolveConfig(config, { processEnv: { NODE_ENV: 'test' } }).config.debug).toBe(2);
    expect(resolveConfig(config, { env: '', processEnv: { MAILSTAGE_ENV: '', NODE_ENV: 'staging' } }).environment).toBe('staging');
  });

  it('reads MAILSTAGE_ENV from process.env by default', async () => {
    vi.stubEnv('MAILSTAGE_ENV', 'staging');
    vi.stubEnv('NODE_ENV', 'production');
    const dir = await fixture({ 'mailstage.config.json': JSON.stringify({ debug: 0, environments: { staging: { debug: 1 }, production: { debug: 2 } } }) });
    const loaded = await loadConfig({ cwd: dir });
    expect(loaded.environment).toBe('staging');
    expect(loaded.config.debug).toBe(1);
  });

  it('rejects an unknown name from the env option, listing the known ones', async () => {
    const error = await thrown(() => resolveConfig(config, { env: 'prod', processEnv: {} }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toBe('Unknown environment "prod" (from the env option (--env)); known environments: staging, production, test');
  });

  it('rejects an unknown name from MAILSTAGE_ENV, listing the known ones', async () => {
    const error = await thrown(() => resolveConfig(config, { processEnv: { MAILSTAGE_ENV: 'qa' } }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain('"qa" (from MAILSTAGE_ENV)');
    expect(error.message).toContain('known environments: staging, production, test');
  });

  it('says so when an environment is asked of a config that defines none', async () => {
    const error = await thrown(() => resolveConfig({ debug: 1 }, { env: 'staging', processEnv: {} }));
    expect(error.message).toContain('the config defines no environments');
  });

  it('ignores a NODE_ENV the config does not define', () => {
    const loaded = resolveConfig(config, { processEnv: { NODE_ENV: 'development' } });
    expect(loaded.environment).toBeUndefined();
    expect(loaded.config.transport?.port).toBe(2525);
  });

  it('checks every overlay, active or not, at its own path', async () => {
    const bad = {
      transport: { port: 25 },
      environments: { staging: { transport: { prot: 2526 } }, production: { transport: { tls: 'sometimes', port: 'x' } } },
    };
    const error = await thrown(() => resolveConfig(bad, { processEnv: {} }));
    expect(issueLines(error.message)).toEqual([
      '  environments.staging.transport.prot: unknown key (did you mean "port"?)',
      '  environments.production.transport.port: expected an integer between 1 and 65535, got "x"',
    ]);
  });

  it('rejects environments nested in an environment', async () => {
    const error = await thrown(() => resolveConfig({ environments: { a: { environments: {} } } }, { processEnv: {} }));
    expect(issueLines(error.message)).toEqual(['  environments.a.environments: unknown key']);
  });

  it('checks required fields after merging (an overlay may supply them)', () => {
    const split = {
      batch: { source: 'rows.csv' },
      environments: { mailing: { batch: { templates: { subject: 'Hi {{name}}' } } } },
    } as unknown as MailstageConfig;
    expect(resolveConfig(split, { env: 'mailing', processEnv: {} }).config.batch?.templates.subject).toBe('Hi {{name}}');
    return thrown(() => resolveConfig(split, { processEnv: {} })).then((error) => {
      expect(issueLines(error.message)).toEqual(['  batch.templates: required; expected an object']);
    });
  });

  it('only needs the env() variables of the active environment', () => {
    const withSecrets: MailstageConfig = {
      auth: { user: 'u', pass: env('DEV_PASS', { default: 'dev' }) },
      environments: { production: { auth: { pass: env('PROD_PASS') } } },
    };
    expect(resolveConfig(withSecrets, { processEnv: {} }).config.auth?.pass).toBe('dev');
    expect(() => resolveConfig(withSecrets, { env: 'production', processEnv: {} })).toThrow(/PROD_PASS/);
  });
});
