// Emits dist/ (JavaScript + .d.ts) with the project's own TypeScript compiler, then marks the
// package's bins executable: tsc writes files 0644, and `npx mailstage` inside a clone runs
// dist/cli/index.js through its shebang ("Permission denied" without the bit).
// Kept as a script so `npm ci` (prepare) and `npm run build` do the same thing.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
if (!existsSync(tsc) || !existsSync(join(root, 'tsconfig.build.json'))) {
  // Installed as a dependency of someone else's project: dist/ ships in the tarball, built.
  process.exit(0);
}
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });

const { bin } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
for (const file of Object.values(typeof bin === 'string' ? { main: bin } : bin ?? {})) {
  chmodSync(join(root, file), 0o755);
}
