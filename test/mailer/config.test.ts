/** The Mailer from config: discovery from the cwd, environments, auth with env() secrets, the
 *  default TLS policy, message defaults, transport URLs, verify(). */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createMailer, defineConfig, env, loadConfig, SmtpAuthenticationError, type Mailer, type MailerEvent,
} from '../../index.js';
import { configFor, countingServer, simple, type CountingServer } from './helpers.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function server(options = {}): Promise<CountingServer> {
  const s = await countingServer(options);
  cleanups.push(() => s.close());
  return s;
}

function track(mailer: Mailer): Mailer {
  cleanups.push(() => mailer.close());
  return mailer;
}

function setEnv(name: string, value: string | undefined): void {
  const before = process.env[name];
  if (value === undefined) delete process.env[name]; else process.env[name] = value;
  cleanups.push(() => { if (before === undefined) delete process.env[name]; else process.env[name] = before; });
}

/** A temp project holding `mailstage.config.ts` that imports defineConfig/env from the source. */
async function project(configBody: string): Promise<string> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'mailstage-mailer-config-')));
  cleanups.push(() => fs.rm(dir, { recursive: true, force: true }));
  const define = path.relative(dir, path.join(repoRoot, 'core/config/define.js'));
  await fs.writeFile(path.join(dir, 'package.json'), '{ "name": "fixture", "private": true }\n');
  await fs.writeFile(path.join(dir, 'mailstage.config.ts'), `import { defineConfig, env } from '${define}';\nexport default defineConfig(${configBody});\n`);
  return dir;
}

function chdir(dir: string): void {
  const before = process.cwd();
  process.chdir(dir);
  cleanups.push(() => process.chdir(before));
}

describe('createMailer from config', () => {
  it('createMailer() finds mailstage.config.ts from the cwd and applies its environment', async () => {
    const base = await server();
    const staging = await server();
    const dir = await project(`{
      transport: { host: '127.0.0.1', port: ${base.port}, tls: 'none', pool: { maxConnections: 2 } },
      message: { from: 'Config Sender <config@example.com>', headers: { 'X-App': 'mailstage-test' } },
      environments: { staging: { transport: { port: ${staging.port} } } },
    }`);
    chdir(dir);
    setEnv('MAILSTAGE_ENV', undefined);

    const mailer = track(await createMailer());
    const info = await mailer.sendMail({ to: 'a@example.com', subject: 'from config', text: 'x' });
    expect(info.envelope.from).toBe('config@example.com'); // message.from default
    expect(base.messages).toHaveLength(1);
    expect(base.messages[0]!.data.toString()).toMatch(/^X-App: mailstage-test\r$/m);
    expect(base.messages[0]!.data.toString()).toMatch(/^From: Config Sender <config@example\.com>\r$/m);
    expect(mailer.config.transport?.port).toBe(base.port);

    setEnv('MAILSTAGE_ENV', 'staging');
    const stagingMailer = track(await createMailer());
    await stagingMailer.sendMail({ to: 'b@example.com', subject: 'staging', text: 'x' });
    expect(staging.messages).toHaveLength(1);
    expect(base.messages).toHaveLength(1);
  });

  it('an unknown MAILSTAGE_ENV is a config error naming the known environments', async () => {
    const dir = await project(`{ transport: { host: '127.0.0.1', port: 2525 }, environments: { production: {} } }`);
    chdir(dir);
    setEnv('MAILSTAGE_ENV', 'prod');
    await expect(createMailer()).rejects.toThrow(/Unknown environment "prod".*production/);
  });

  it('authenticates with auth from config, the password from env()', async () => {
    const s = await server({ authOptional: false, allowInsecureAuth: true, users: { app: 's3cret-pass' } });
    setEnv('MAILER_TEST_PASS', 's3cret-pass');
    const config = defineConfig({
      transport: { host: s.host, port: s.port, tls: 'none', allowInsecureAuth: true },
      auth: { user: 'app', pass: env('MAILER_TEST_PASS'), mechanisms: ['LOGIN', 'PLAIN'] },
    });
    const mailer = track(createMailer(config));
    await expect(mailer.verify()).resolves.toBe(true);
    await mailer.sendMail(simple(1));
    await mailer.sendMail(simple(2));
    expect(s.messages.map((m) => m.user)).toEqual(['app', 'app']);
    // verify() on its own connection, then one pooled connection for both messages.
    expect(s.connections()).toBe(2);
  });

  it('a wrong password is a permanent SmtpAuthenticationError, not retried', async () => {
    const s = await server({ authOptional: false, allowInsecureAuth: true, users: { app: 'right' } });
    setEnv('MAILER_TEST_PASS', 'wrong');
    const events: MailerEvent[] = [];
    const mailer = track(createMailer(defineConfig({
      transport: { host: s.host, port: s.port, tls: 'none', allowInsecureAuth: true, retry: { attempts: 3, minDelay: 10 } },
      auth: { user: 'app', pass: env('MAILER_TEST_PASS') },
    }), { onEvent: (e) => events.push(e) }));
    const err = await mailer.sendMail(simple(1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SmtpAuthenticationError);
    expect((err as SmtpAuthenticationError).permanent).toBe(true);
    expect(String((err as Error).message)).not.toContain('wrong');
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(0);
    await expect(mailer.verify()).rejects.toBeInstanceOf(SmtpAuthenticationError);
  });

  it('takes host, port and credentials from transport.url', async () => {
    const s = await server({ authOptional: false, allowInsecureAuth: true, users: { urluser: 'url-pass' } });
    const mailer = track(createMailer(defineConfig({
      transport: { url: `smtp://urluser:url-pass@127.0.0.1:${s.port}`, tls: 'none', allowInsecureAuth: true },
    })));
    await mailer.sendMail(simple(1));
    expect(s.messages[0]!.user).toBe('urluser');
  });

  it('upgrades with STARTTLS by default (opportunistic, like nodemailer)', async () => {
    const s = await server();
    const mailer = track(createMailer(defineConfig({
      transport: { host: s.host, port: s.port, tlsOptions: { ca: s.ca } },
    })));
    await mailer.sendMail(simple(1));
    expect(s.messages[0]!.secure).toBe(true);
  });

  it('accepts a loadConfig() result and its frozen resolved config', async () => {
    const s = await server();
    const dir = await project(`{ transport: { host: '127.0.0.1', port: ${s.port}, tls: 'none' } }`);
    setEnv('MAILSTAGE_ENV', undefined);
    const loaded = await loadConfig({ cwd: dir });
    await track(createMailer(loaded)).sendMail(simple(1));
    await track(createMailer(loaded.config)).sendMail(simple(2));
    expect(s.messages).toHaveLength(2);
  });

  it('an invalid config passed to createMailer throws the config error at once', () => {
    expect(() => createMailer(configFor({ host: '127.0.0.1', port: 70000 }))).toThrow(/transport\.port/);
  });
});
