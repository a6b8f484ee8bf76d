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
import { messageLine, portNumber, refusedLine } from './dev-server.js';

/** The mailstage package folder (works from dist/cli and from cli/ under tsx). */
export function packageRoot(): string {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'mailstage') return dir;
    if (path.dirname(dir) === dir) throw new CliInputError('cannot find the mailstage package folder');
  }
}

interface DemoFlags {
  readonly dir?: string;
  readonly webPort?: number;
  readonly web: boolean;
  readonly wait?: boolean;
}

export function demoCommand(program: Command): void {
  program
    .command('demo')
    .description('start the dev sink and its web inbox, send the example batch to it, show where the messages are')
    .option('--dir <folder>', 'where the sink stores messages (default: a new temporary folder)')
    .option('--web-port <n>', 'port of the web inbox on 127.0.0.1 (default: any free port)', portNumber('--web-port'))
    .option('--no-web', 'no web inbox')
    .option('--wait', 'keep the sink and the inbox open after the batch, until Ctrl-C (the default in a terminal)')
    .option('--no-wait', 'stop once the batch is sent (the default when not in a terminal)')
    .action(action(async (flags: DemoFlags, command: Command) => {
      const g = globals(command);
      const root = packageRoot();
      const file = g.config ?? path.join(root, 'config.example.ts');
      const loaded = await loadConfig({ file, env: g.env ?? 'development' });
      const base = loaded.config;
      if (!base.batch) throw new CliInputError(`${file} has no batch section`);
      const work = flags.dir ? path.resolve(flags.dir) : await fsp.mkdtemp(path.join(os.tmpdir(), 'mailstage-demo-'));
      const inbox = flags.dir ? work : path.join(work, 'inbox');
      const { startDevServer } = await import('../devserver/sink.js');
      const sink = await startDevServer({
        port: 0,
        dir: inbox,
        web: flags.web ? { port: flags.webPort ?? 0 } : false,
        onMessage: (m) => process.stdout.write(`  sink: ${messageLine(m)}\n`),
        onRefused: (m) => process.stdout.write(`  sink: ${refusedLine(m)}\n`),
      });
      process.stdout.write(`dev sink on smtp://${sink.host}:${sink.port} (STARTTLS, any AUTH) storing in ${sink.dir}\n`);
      if (sink.inboxUrl) process.stdout.write(`inbox: ${sink.inboxUrl}\n`);
      // The sink's port is only known now; the run's bookkeeping goes next to the inbox, not into
      // the package folder.
      const config: ResolvedConfig = {
        ...base,
        transport: { ...base.transport, host: sink.host, port: sink.port, url: undefined },
        batch: { ...base.batch, journalDir: path.join(work, 'runs'), previewDir: path.join(work, 'preview') },
      };
      const mailer = createMailer(config, g.debug ? { debug: 1 } : {});
      let code: number = EXIT_OK;
      let files: string[] = [];
      try {
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
        }
        files = (await fsp.readdir(inbox)).filter((n) => n.endsWith('.eml')).sort();
        process.stdout.write(`\n${files.length} message(s) delivered to ${inbox}\n`);
        for (const f of files) process.stdout.write(`  ${path.join(inbox, f)}\n`);
        const wait = flags.wait ?? (process.stdout.isTTY === true && process.stdin.isTTY === true);
        if (sink.inboxUrl && wait) {
          process.stdout.write(`\nSee them in the inbox: ${sink.inboxUrl}  (Ctrl-C to stop)\n`);
          await untilInterrupted();
        } else if (sink.inboxUrl) {
          process.stdout.write(`\nThe inbox closes with the demo; \`npx mailstage demo --wait\` keeps it open, or: npx mailstage dev-server --dir ${inbox}\n`);
        } else {
          process.stdout.write(`Open them in a mail client, or: cat ${path.join(inbox, files[0] ?? '*.eml')}\n`);
        }
      } finally {
        await sink.close();
      }
      return code;
    }));
}

function untilInterrupted(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}
