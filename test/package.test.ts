/**
 * Users install a tarball, not this tree: pack the package, unpack it into a scratch project (its
 * dependencies linked from ours, so no network), and import it from plain Node and from TypeScript,
 * and run its `mailstage` bin there — `demo` included, from a folder that is not the package's.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const scratch = mkdtempSync(join(tmpdir(), 'mailstage-pack-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let tarball = '';

function install(): string {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const [{ filename }] = JSON.parse(out) as { filename: string }[];
  tarball = join(scratch, filename);
  const project = join(scratch, 'app');
  const modules = join(project, 'node_modules');
  mkdirSync(join(modules, 'mailstage'), { recursive: true });
  execFileSync('tar', ['-xpzf', tarball, '-C', join(modules, 'mailstage'), '--strip-components=1']);
  for (const name of readdirSync(join(root, 'node_modules'))) {
    if (name === 'mailstage' || name.startsWith('.')) continue;
    symlinkSync(join(root, 'node_modules', name), join(modules, name));
  }
  // What npm's bin-links does on install: a link in node_modules/.bin to the package's bin. (It
  // would also chmod the target; here the bit must already be in the tarball.)
  mkdirSync(join(modules, '.bin'));
  const { bin } = JSON.parse(readFileSync(join(modules, 'mailstage', 'package.json'), 'utf8')) as { bin: Record<string, string> };
  for (const [name, target] of Object.entries(bin)) symlinkSync(join('..', 'mailstage', target), join(modules, '.bin', name));
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', type: 'module', private: true }));
  return project;
}

describe('the packed package', () => {
  const project = install();
  const pkg = join(project, 'node_modules', 'mailstage');

  it('ships dist/ and no sources or tests', () => {
    expect(existsSync(join(pkg, 'dist', 'index.js'))).toBe(true);
    expect(existsSync(join(pkg, 'dist', 'index.d.ts'))).toBe(true);
    expect(existsSync(join(pkg, 'dist', 'plugins', 'lmtp', 'index.js'))).toBe(true);
    expect(existsSync(join(pkg, 'core'))).toBe(false);
    expect(existsSync(join(pkg, 'test'))).toBe(false);
  });

  it('ships what `mailstage demo` and the README need: the example config, its templates, CSV, attachments, docs', () => {
    for (const file of [
      'config.example.ts', 'examples/recipients.csv', 'examples/templates/welcome.subject.hbs', 'examples/templates/welcome.text.hbs',
      'examples/templates/welcome.html.hbs', 'examples/attachments/plan-pro.txt', 'docs/plugins.md', 'docs/inbox.png',
    ]) {
      expect(readFileSync(join(pkg, file)).equals(readFileSync(join(root, file))), file).toBe(true);
    }
  });

  it('the bin is executable in the tarball itself', () => {
    const listing = execFileSync('tar', ['-tvzf', tarball], { encoding: 'utf8' });
    expect(listing).toMatch(/^-rwxr-xr-x .* package\/dist\/cli\/index\.js$/m);
    expect(statSync(join(pkg, 'dist', 'cli', 'index.js')).mode & 0o111).toBe(0o111);
  });

  it('`npx mailstage demo` works in the installing project, away from the package folder', () => {
    const r = spawnSync('npx', ['mailstage', 'demo'], { cwd: project, encoding: 'utf8', timeout: 120_000, env: { ...process.env, NODE_ENV: '', MAILSTAGE_ENV: '' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^inbox: http:\/\/127\.0\.0\.1:\d+\/$/m);
    const delivered = /(\d+) message\(s\) delivered to (\S+)/.exec(r.stdout);
    expect(Number(delivered?.[1])).toBe(5);
    expect(readdirSync(delivered![2]!).filter((f) => f.endsWith('.eml'))).toHaveLength(5);
  }, 120_000);

  it('its prepare script (if a package manager runs it on install) leaves the shipped dist/ alone', () => {
    const r = spawnSync(process.execPath, [join(pkg, 'scripts', 'build.mjs')], { cwd: pkg, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(pkg, 'dist', 'cli', 'index.js'))).toBe(true);
  });

  it('`npx mailstage --help` works inside the clone (the build sets the executable bit)', () => {
    expect(statSync(join(root, 'dist', 'cli', 'index.js')).mode & 0o111).toBe(0o111);
    const r = spawnSync('npx', ['mailstage', '--help'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage: mailstage /);
  }, 60_000);

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
