/**
 * A newcomer copies the README's quick start into a `.mjs` file and runs it with plain Node 20.
 * Here it runs exactly so (only the server's address changed to a dev sink, and its self-signed
 * certificate accepted), against the built package, and the sink must have stored what it sent.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startDevServer, type DevServer, type StoredMessage } from '../../devserver/sink.js';
import { tempDir } from '../runner/helpers.js';
import { ROOT } from './run.js';

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The first fenced block after a heading. */
function blockAfter(heading: string): { lang: string; code: string } {
  const section = readme.slice(readme.indexOf(heading));
  const m = /```(\w*)\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error(`no code block after ${heading}`);
  return { lang: m[1]!, code: m[2]! };
}

let sink: DevServer | undefined;
afterAll(() => sink?.close());

describe('README', () => {
  it('the quick start runs as plain Node 20 ESM', async () => {
    const { lang, code } = blockAfter('## Quick start');
    expect(lang).toBe('js');
    const stored: StoredMessage[] = [];
    sink = await startDevServer({ dir: tempDir('mailstage-readme-'), onMessage: (m) => stored.push(m) });
    const target = "host: 'smtp.example.com', port: 587,";
    expect(code).toContain(target);
    const script = code.replace(target, `host: '127.0.0.1', port: ${sink.port}, tlsOptions: { rejectUnauthorized: false },`);
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      // -e with cwd = the package: `import 'mailstage'` resolves to the built package, as in a project.
      const child = execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: { ...process.env, SMTP_PASS: 'any' } }, (error, _stdout, stderr) => resolve({ code: error ? (error as { code?: number }).code ?? 1 : 0, stderr }));
      void child;
    });
    expect(result.code, result.stderr).toBe(0);
    expect(stored.map((m) => [m.from, m.to, m.secure, m.user])).toEqual([
      ['app@example.com', ['alice@example.org', 'bob@example.org'], true, 'app'],
      ['app@example.com', ['carol@example.org'], true, 'app'],
    ]);
  });
});
