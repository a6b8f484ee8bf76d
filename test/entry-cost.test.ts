/**
 * The package entry stays cheap: importing 'mailstage' (for SmtpClient) must not evaluate the heavy
 * dependencies behind the config loader, the message builders, the runner and the dev sink. They
 * load on first use (see core/lazy.ts and index.ts). Checked on the built dist/ with a resolve hook
 * that reports every package module the import touches, ESM or CommonJS.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const HEAVY = ['zod', 'cosmiconfig', 'jiti', 'mimetext', 'libmime', 'libqp', 'handlebars', 'smtp-server', 'selfsigned', 'bullmq', 'ioredis', 'csv-parse', 'cli-progress', 'commander'];

function packagesLoaded(script: string): string[] {
  const hook = `export async function resolve(s, c, n) { const r = await n(s, c); const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(r.url); if (m) console.log('PKG ' + m[1]); return r; }`;
  const register = `import { register } from 'node:module'; register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`;
  const probe = `${script}; import { createRequire } from 'node:module'; for (const k of Object.keys(createRequire(import.meta.url).cache)) { const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(k); if (m) console.log('PKG ' + m[1]); }`;
  const out = execFileSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', probe], { cwd: root, encoding: 'utf8' });
  return [...new Set(out.split('\n').filter((l) => l.startsWith('PKG ')).map((l) => l.slice(4)))];
}

describe('the package entry', () => {
  it('loads none of the heavy dependencies until they are used', () => {
    const loaded = packagesLoaded(`const m = await import(${JSON.stringify(resolve(root, 'dist/index.js'))}); new m.SmtpClient({ host: '127.0.0.1' }); m.defineConfig({}); m.env('X')`);
    expect(loaded.filter((p) => HEAVY.includes(p))).toEqual([]);
  });

  it('still loads them synchronously where the API is synchronous', () => {
    const loaded = packagesLoaded(`const m = await import(${JSON.stringify(resolve(root, 'dist/index.js'))}); m.createMailer({ transport: { host: '127.0.0.1', tls: 'none' } }).close(); m.compileTemplates({ subject: '{{a}}' })`);
    expect(loaded).toEqual(expect.arrayContaining(['zod', 'handlebars']));
  });
});
