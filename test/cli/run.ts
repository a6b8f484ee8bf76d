/** Runs the CLI as a child process: from source (tsx) by default, or the built dist/ file. */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST_CLI = path.join(ROOT, 'dist/cli/index.js');
// By absolute URL: `--import tsx` would be resolved from the child's cwd (a temp folder).
const TSX = pathToFileURL(path.join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href;

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  readonly input?: string | Buffer;
  /** Run dist/cli/index.js (what `npm run demo` and the bin run) instead of the sources. */
  readonly dist?: boolean;
  readonly nodeArgs?: readonly string[];
}

export function spawnCli(args: readonly string[], options: CliOptions = {}): ChildProcess {
  if (options.dist && !existsSync(DIST_CLI)) throw new Error(`${DIST_CLI} is missing: run npm run build first`);
  const entry = options.dist ? [DIST_CLI] : ['--import', TSX, path.join(ROOT, 'cli/index.ts')];
  return spawn(process.execPath, [...(options.nodeArgs ?? []), ...entry, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NODE_ENV: '', MAILSTAGE_ENV: '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliResult> {
  const child = spawnCli(args, options);
  return collect(child, options.input);
}

export function collect(child: ChildProcess, input?: string | Buffer): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(input);
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}
