/**
 * `mailstage dkim record` as a user runs it: a TypeScript config with the dkim plugin, keys made
 * by openssl, the CLI as a child process. The printed record must carry the public key openssl
 * derives from the same private key.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, runCli } from '../cli/run.js';

const plugin = pathToFileURL(path.join(ROOT, 'plugins/dkim/index.ts')).href;
const entry = pathToFileURL(path.join(ROOT, 'index.ts')).href;

const made: string[] = [];
const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A project folder with keys/ and a mailstage.config.ts whose dkim keys are `keys` (source text). */
function project(keys: string, plugins = `[dkim({ keys: ${keys} })]`): string {
  const dir = tempDir('mailstage-dkim-cli-');
  mkdirSync(path.join(dir, 'keys'));
  execFileSync('openssl', ['genrsa', '-out', path.join(dir, 'keys/rsa.pem'), '2048'], { stdio: 'ignore' });
  execFileSync('openssl', ['genrsa', '-out', path.join(dir, 'keys/small.pem'), '768'], { stdio: 'ignore' });
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path.join(dir, 'keys/ed.pem')], { stdio: 'ignore' });
  writeFileSync(path.join(dir, 'package.json'), '{}');
  writeFileSync(path.join(dir, 'mailstage.config.ts'), [
    `import dkim from ${JSON.stringify(plugin)};`,
    `import { defineConfig, env } from ${JSON.stringify(entry)};`,
    `export default defineConfig({ plugins: ${plugins}, transport: { host: '127.0.0.1', port: 2525 } });`,
  ].join('\n'));
  return dir;
}

/** The public key openssl derives, as the p= value (SPKI DER for RSA, the raw 32 octets for Ed25519). */
function publicKey(file: string, ed = false): string {
  const der = execFileSync('openssl', ['pkey', '-in', file, '-pubout', '-outform', 'DER']);
  return (ed ? der.subarray(der.length - 32) : der).toString('base64');
}

describe('mailstage dkim record', () => {
  it('prints one zone-file line per key (255-character strings), keys read relative to the config file', async () => {
    const dir = project(`[
      { domain: 'example.com', selector: 'rsa2026', privateKey: { path: 'keys/rsa.pem' } },
      { domain: 'bücher.example', selector: 'ed2026', privateKey: env('DKIM_ED') },
    ]`);
    const other = tempDir('mailstage-dkim-cwd-');
    const r = await runCli(['--config', path.join(dir, 'mailstage.config.ts'), 'dkim', 'record'], {
      cwd: other, // not the config's folder: relative key paths must still resolve from there
      env: { DKIM_ED: readFileSync(path.join(dir, 'keys/ed.pem'), 'utf8') },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const rsaValue = `v=DKIM1; k=rsa; p=${publicKey(path.join(dir, 'keys/rsa.pem'))}`;
    const edValue = `v=DKIM1; k=ed25519; p=${publicKey(path.join(dir, 'keys/ed.pem'), true)}`;
    expect(r.stdout).toBe([
      '; rsa2026 (rsa-sha256, 2048 bits)',
      `rsa2026._domainkey.example.com. IN TXT "${rsaValue.slice(0, 255)}" "${rsaValue.slice(255)}"`,
      '; ed2026 (ed25519-sha256)',
      `ed2026._domainkey.xn--bcher-kva.example. IN TXT "${edValue}"`,
      '',
    ].join('\n'));

    const json = await runCli(['--config', path.join(dir, 'mailstage.config.ts'), 'dkim', 'record', '--json'], {
      cwd: other,
      env: { DKIM_ED: readFileSync(path.join(dir, 'keys/ed.pem'), 'utf8') },
    });
    expect(JSON.parse(json.stdout).map((x: { name: string; txt: string }) => [x.name, x.txt])).toEqual([
      ['rsa2026._domainkey.example.com.', rsaValue],
      ['ed2026._domainkey.xn--bcher-kva.example.', edValue],
    ]);
  }, 60_000);

  it('bad keys: each named on stderr, the good ones still printed, exit 2', async () => {
    const dir = project(`[
      { domain: 'example.com', selector: 'small', privateKey: { path: 'keys/small.pem' } },
      { domain: 'example.com', selector: 'good', privateKey: { path: 'keys/ed.pem' } },
      { domain: 'example.com', selector: 'env', privateKey: env('DKIM_UNSET_IN_TEST') },
      { domain: 'example.com', selector: 'gone', privateKey: { path: 'keys/missing.pem' } },
    ]`);
    const r = await runCli(['dkim', 'record'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^; good \(ed25519-sha256\)\ngood\._domainkey\.example\.com\. IN TXT "v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}="\n$/);
    expect(r.stderr.trim().split('\n')).toEqual([
      'mailstage: dkim.keys[0].privateKey: small._domainkey.example.com: an RSA key of 768 bits is too small; RFC 8301 requires at least 1024 (use 2048)',
      'mailstage: dkim.keys[2].privateKey: env._domainkey.example.com: environment variable DKIM_UNSET_IN_TEST is not set',
      `mailstage: dkim.keys[3].privateKey: gone._domainkey.example.com: cannot read ${path.join(dir, 'keys/missing.pem')}: ENOENT: no such file or directory, stat '${path.join(dir, 'keys/missing.pem')}'`,
    ]);
  }, 60_000);

  it('a config without the dkim plugin: one line, exit 2', async () => {
    const dir = project('[]', '[]');
    const r = await runCli(['dkim', 'record'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`mailstage: ${path.join(dir, 'mailstage.config.ts')} has no dkim plugin in plugins\n`);
  }, 60_000);
});
