/**
 * Users install a tarball, not this tree: pack the package, unpack it into a scratch project (its
 * dependencies linked from ours, so no network), and import it from plain Node and from TypeScript.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, symlinkSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const scratch = mkdtempSync(join(tmpdir(), 'mailstage-pack-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function install(): string {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [{ filename }] = JSON.parse(out) as { filename: string }[];
  const project = join(scratch, 'app');
  const modules = join(project, 'node_modules');
  mkdirSync(join(modules, 'mailstage'), { recursive: true });
  execFileSync('tar', ['-xzf', join(scratch, filename), '-C', join(modules, 'mailstage'), '--strip-components=1']);
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name === 'mailstage' || name.startsWith('.')) continue;
    symlinkSync(join(root, 'node_modules', name), join(modules, name));
  }
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', type: 'module', private: true }));
  return project;
}

describe('the packed package', () => {
  const project = install();

  it('ships dist/ and no sources or tests', () => {
    const pkg = join(project, 'node_modules', 'mailstage');
    expect(existsSync(join(pkg, 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(pkg, 'dist', 'index.d.ts'))).toBe(true);
    expect(existsSync(join(pkg, 'dist', 'plugins', 'lmtp', 'index.js'))).toBe(true);
    expect(existsSync(join(pkg, 'core'))).toBe(false);
    expect(existsSync(join(pkg, 'test'))).toBe(false);
  });

  it('imports from plain node: the entry and every plugin', () => {
    const script = `
      import { SmtpClient, SmtpError, SmtpTimeoutError, definePlugin } from 'mailstage';
      const names = [];
      for (const p of ['auth-plain', 'auth-login', 'auth-cram-md5', 'lmtp', 'dsn']) names.push((await import('mailstage/plugins/' + p)).default().name);
      const c = new SmtpClient({ host: '127.0.0.1' });
      console.log(JSON.stringify({ names, client: typeof c.sendmail, tree: new SmtpTimeoutError('x', 1) instanceof SmtpError, plugin: definePlugin({ name: 'x' }).name }));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: project, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ names: ['auth-plain', 'auth-login', 'auth-cram-md5', 'lmtp', 'dsn'], client: 'function', tree: true, plugin: 'x' });
  });

  it('type-checks a TypeScript consumer against the shipped .d.ts', () => {
    writeFileSync(join(project, 'use.ts'), `
      import { SmtpClient, type SmtpReply, type Authenticator } from 'mailstage';
      import lmtp from 'mailstage/plugins/lmtp';
      const auth: Authenticator = { mechanism: 'X', start: () => undefined, next: (c) => c };
      const c = new SmtpClient({ host: 'h', tls: 'required', plugins: [lmtp()] });
      export async function f(): Promise<SmtpReply> { return c.noop(); }
      void auth;
      // Proves the types are real (not any): a misspelt option must be an error.
      // @ts-expect-error: 'hots' is not an option
      new SmtpClient({ hots: 'h' });
    `);
    writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], typeRoots: [join(root, 'node_modules', '@types')] },
      files: ['use.ts'],
    }));
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = (() => {
      try {
        return execFileSync(process.execPath, [tsc, '-p', project], { cwd: project, encoding: 'utf8' });
      } catch (e) {
        return String((e as { stdout?: string }).stdout ?? e);
      }
    })();
    expect(result).toBe('');
  });
});
