/**
 * `mailstage demo` (`npm run demo`): the dev sink on a free port, the example batch from
 * config.example.ts's `development` environment sent to it, and where the delivered `.eml` files are.
 */
import { promises as fsp, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { createMailer, isDeliveryUnknown, loadConfig, type ResolvedConfig } from '../index.js';
import { runBatch } from '../runner/batch.js';
import { mailerSender } from '../runner/sender.js';
import { action, CliInputError, EXIT_OK, globals } from './common.js';
import { messageLine } from './dev-server.js';

/** The mailstage package folder (works from dist/cli and from cli/ under tsx). */
export function packageRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mailstage') return dir;
    if (path.dirname(dir) === dir) throw new CliInputError('cannot find the mailstage package folder');
  }
}

export function demoCommand(program: Command): void {
  program
    .command('demo')
    .description('start the dev sink, send the example batch to it, show where the messages are')
    .option('--dir <folder>', 'where the sink stores messages (default: a new temporary folder)')
    .action(action(async (flags: { dir?: string }, command: Command) => {
      const g = globals(command);
      const root = packageRoot();
      const file = g.config ?? path.join(root, 'config.example.ts');
      const loaded = await loadConfig({ file, env: g.env ?? 'development' });
      const base = loaded.config;
      if (!base.batch) throw new CliInputError(`${file} has no batch section`);
      const work = flags.dir ? path.resolve(flags.dir) : await fsp.mkdtemp(path.join(os.tmpdir(), 'mailstage-demo-'));
      const inbox = flags.dir ? work : path.join(work, 'inbox');
      const { startDevServer } = await import('../devserver/sink.js');
      const sink = await startDevServer({ port: 0, dir: inbox, onMessage: (m) => process.stdout.write(`  sink: ${messageLine(m)}\n`) });
      process.stdout.write(`dev sink on smtp://${sink.host}:${sink.port} (STARTTLS, any AUTH) storing in ${sink.dir}\n`);
      // The sink's port is only known now; the run's bookkeeping goes next to the inbox, not into
      // the package folder.
      const config: ResolvedConfig = {
        ...base,
        transport: { ...base.transport, host: sink.host, port: sink.port, url: undefined },
        batch: { ...base.batch, journalDir: path.join(work, 'runs'), previewDir: path.join(work, 'preview') },
      };
      const mailer = createMailer(config, g.debug ? { debug: 1 } : {});
      let code: number = EXIT_OK;
      try {
        const result = await runBatch({
          config,
          baseDir: path.dirname(loaded.filepath ?? file),
          send: true,
          sender: mailerSender(mailer, isDeliveryUnknown),
          progress: { silent: true },
        });
        code = result.exitCode;
      } finally {
        await mailer.close();
        await sink.close();
      }
      const files = (await fsp.readdir(inbox)).filter((n) => n.endsWith('.eml')).sort();
      process.stdout.write(`\n${files.length} message(s) delivered to ${inbox}\n`);
      for (const f of files) process.stdout.write(`  ${path.join(inbox, f)}\n`);
      process.stdout.write(`Open them in a mail client, or: cat ${path.join(inbox, files[0] ?? '*.eml')}\n`);
      return code;
    }));
}
