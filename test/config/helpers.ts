/** Fixture helpers: each test writes its config files into a fresh temp folder. */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '../..');
const defineModule = path.join(repoRoot, 'core/config/define.ts');

const created: string[] = [];

/**
 * A temp folder holding `files`. A `package.json` is added unless given, so discovery stops there
 * (cosmiconfig's 'project' strategy) instead of walking up through /tmp.
 */
export async function fixture(files: Readonly<Record<string, string>>, options: { packageJson?: boolean } = {}): Promise<string> {
  const dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'mailstage-config-')));
  created.push(dir);
  const all = options.packageJson === false || 'package.json' in files ? files : { 'package.json': '{ "name": "fixture", "private": true }\n', ...files };
  for (const [name, content] of Object.entries(all)) {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), content);
  }
  return dir;
}

/** The import specifier a fixture config in `dir` uses for `defineConfig`/`env` (by relative path,
 *  with the `.js` extension the source convention uses). */
export function defineImport(dir: string): string {
  const rel = path.relative(dir, defineModule).replace(/\.ts$/, '.js');
  return rel.startsWith('.') ? rel : `./${rel}`;
}

/** Lets a fixture import installed packages (zod…) as a real project would. */
export async function linkNodeModules(dir: string): Promise<void> {
  await fs.symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
}

export async function removeFixtures(): Promise<void> {
  await Promise.all(created.splice(0).map((dir) => fs.rm(dir, { recursive: true, force: true })));
}

/** Runs `fn` and returns what it threw (failing the test if it did not throw). */
export async function thrown(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error, none was thrown');
}

/** The `  path: message` lines of a ConfigError message. */
export function issueLines(message: string): string[] {
  return message.split('\n').filter((l) => l.startsWith('  '));
}
