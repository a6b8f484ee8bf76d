/**
 * The one-click endpoint in plugins/list-unsubscribe/README.md, run as written (only its import is
 * pointed at the source tree): a real HTTP server in a child process, real POSTs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unsubscribeToken } from '../../plugins/list-unsubscribe/index.js';
import { freePort } from '../interop/servers/common.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SECRET = 'endpoint-test-secret-0123456789ab';

function endpointSource(): string {
  const readme = readFileSync(path.join(ROOT, 'plugins/list-unsubscribe/README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## A one-click endpoint'));
  const code = /```js\n([\s\S]*?)```/.exec(section)![1]!;
  return code.replace("'mailstage/plugins/list-unsubscribe'", JSON.stringify(pathToFileURL(path.join(ROOT, 'plugins/list-unsubscribe/index.ts')).href));
}

describe('the README\'s one-click endpoint', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailstage-unsub-endpoint-'));
  const suppressFile = path.join(dir, 'suppressed.txt');
  let child: ChildProcess;
  let base: string;

  beforeAll(async () => {
    const source = endpointSource();
    expect(source.split('\n').filter((l) => l.trim() !== '').length).toBeLessThanOrEqual(16);
    const file = path.join(dir, 'endpoint.mjs');
    writeFileSync(file, source);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const tsx = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;
    child = spawn(process.execPath, ['--import', tsx, file], {
      env: { ...process.env, UNSUB_SECRET: SECRET, SUPPRESS_FILE: suppressFile, PORT: String(port) },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    for (let i = 0; ; i++) {
      const up = await fetch(base).then(() => true, () => false);
      if (up) break;
      if (i > 200) throw new Error('the endpoint did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  afterAll(() => {
    child?.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (token: string, body = 'List-Unsubscribe=One-Click') =>
    fetch(`${base}/unsubscribe/${token}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });

  it('a valid token POSTed with List-Unsubscribe=One-Click unsubscribes that recipient', async () => {
    const response = await post(unsubscribeToken('bob@example.org', SECRET, 'weekly'));
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('You are unsubscribed.\n');
    expect(readFileSync(suppressFile, 'utf8')).toBe('bob@example.org\n');
  });

  it('a tampered token, another secret, a wrong form body or a GET change nothing', async () => {
    const before = existsSync(suppressFile) ? readFileSync(suppressFile, 'utf8') : '';
    const token = unsubscribeToken('eve@example.org', SECRET);
    const tampered = `${token.slice(0, 5)}${token[5] === 'A' ? 'B' : 'A'}${token.slice(6)}`;
    expect((await post(tampered)).status).toBe(400);
    expect((await post(unsubscribeToken('eve@example.org', 'another-secret-0123456789abcdef!'))).status).toBe(400);
    expect((await post(token, 'List-Unsubscribe=Yes')).status).toBe(400);
    expect((await fetch(`${base}/unsubscribe/${token}`)).status).toBe(405);
    expect(readFileSync(suppressFile, 'utf8')).toBe(before);
  });
});
