/** `mailstage batch`: the config's mailing — a dry run unless --send. */
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Command } from 'commander';
import { createMailer, isDeliveryUnknown } from '../index.js';
import { parseQueueUrl } from '../queue/connection.js';
import { BatchInputError } from '../runner/errors.js';
import { runBatch } from '../runner/batch.js';
import { mailerSender, type Sender } from '../runner/sender.js';
import { action, CliInputError, configDir, EXIT_INPUT, globals, loadCliConfig, positiveInt } from './common.js';

interface BatchFlags {
  readonly send?: boolean;
  readonly limit?: number;
  readonly resume?: boolean;
  readonly skipUnknown?: boolean;
  readonly report?: string;
  readonly queue?: string;
  readonly status?: string;
  readonly run?: string;
  readonly progress?: boolean;
}

export function batchCommand(program: Command): void {
  program
    .command('batch')
    .description('run the config\'s batch mailing: a dry run (render, validate, preview) unless --send')
    .option('--send', 'really send (default: dry run)')
    .option('--limit <n>', 'only the first N rows of the source', positiveInt('--limit'))
    .option('--resume', 'continue the latest interrupted run (with --send)')
    .option('--skip-unknown', 'on --resume, do not resend rows that were in flight at the stop')
    .option('--report <file>', 'write a JSON report (per-row outcome, totals, durations)')
    .option('--no-progress', 'no progress bar or progress lines')
    .option('--queue <url>', 'with --send: enqueue the rows on a BullMQ queue in Redis (redis://host:port/db) for `mailstage worker` and return')
    .option('--status <run>', 'with --queue: a queued run\'s progress from Redis (with --report: its JSON report)')
    .option('--run <id>', 'with --queue --send: the run id (default: a new one); enqueueing the same run again adds nothing twice')
    .addHelpText('after', `
Exit codes: 0 every row sent (or valid, on a dry run), 1 delivery failures, 2 bad input or config,
130 stopped by Ctrl-C/SIGTERM (rows in flight finish; continue with --send --resume).`)
    .action(action(async (flags: BatchFlags, command: Command) => {
      const queued = await queueBranch(flags, command);
      if (queued !== undefined) return queued;
      if (flags.skipUnknown && !flags.resume) throw new CliInputError('--skip-unknown only applies with --resume');
      const g = globals(command);
      const loaded = await loadCliConfig(g);
      if (!loaded.config.batch) throw new BatchInputError(`the config${loaded.filepath ? ` (${loaded.filepath})` : ''} has no \`batch\` section`);

      let sender: Sender | undefined;
      if (flags.send) {
        // runBatch verifies it (after checking templates and source) before journaling a run.
        sender = mailerSender(createMailer(loaded, g.debug ? { debug: 1 } : {}), isDeliveryUnknown);
      }

      const controller = new AbortController();
      let signals = 0;
      const onSignal = (name: string) => (): void => {
        signals++;
        if (signals > 1) {
          process.stderr.write(`mailstage: ${name} again, exiting now (the journal is consistent; --resume will resend unknown rows)\n`);
          process.exit(130);
        }
        process.stderr.write(`\nmailstage: ${name}: stopping — letting the messages in flight finish (again to quit at once)\n`);
        controller.abort();
      };
      const onInt = onSignal('SIGINT');
      const onTerm = onSignal('SIGTERM');
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onTerm);
      try {
        const result = await runBatch({
          config: loaded.config,
          baseDir: configDir(loaded),
          send: flags.send === true,
          ...(sender ? { sender } : {}),
          ...(flags.limit ? { limit: flags.limit } : {}),
          resume: flags.resume === true,
          skipUnknown: flags.skipUnknown === true,
          ...(flags.report ? { report: flags.report } : {}),
          signal: controller.signal,
          progress: { silent: flags.progress === false },
          collectGarbage: fullGc(),
        });
        if (flags.queue !== undefined) process.stdout.write(`Nothing was enqueued (dry run). Add --send to enqueue on ${parseQueueUrl(flags.queue).display}.\n`);
        if (result.exitCode === EXIT_INPUT && result.summary.totals.invalid > 0) {
          process.stderr.write(`mailstage: ${result.summary.totals.invalid} row(s) are invalid (see the table above)\n`);
        }
        return result.exitCode;
      } finally {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onTerm);
        await sender?.close();
      }
    }));
}

/**
 * `--queue` / `--status`: the scale-out (issue 8). Returns the exit code when it handled the
 * command, undefined for the in-process paths (a dry run with --queue is the ordinary dry run).
 * The queue modules are imported only here: BullMQ and ioredis stay out of every other command.
 */
async function queueBranch(flags: BatchFlags, command: Command): Promise<number | undefined> {
  if (flags.run !== undefined && (flags.queue === undefined || !flags.send)) throw new CliInputError('--run only applies with --queue and --send');
  if (flags.status !== undefined) {
    if (flags.queue === undefined) throw new CliInputError('--status needs --queue redis://host:port/db (where the run lives)');
    if (flags.send || flags.resume || flags.limit) throw new CliInputError('--status only reads a run: drop --send, --resume and --limit');
    const { runStatus } = await import('../queue/status.js');
    const result = await runStatus({ queue: flags.queue, run: flags.status, ...(flags.report ? { report: flags.report } : {}) });
    return result.exitCode;
  }
  if (flags.queue === undefined) return undefined;
  parseQueueUrl(flags.queue);
  if (flags.resume || flags.skipUnknown) {
    throw new CliInputError('--resume and --skip-unknown are for in-process runs; with --queue, enqueue the same --run again (nothing is added twice)');
  }
  if (!flags.send) return undefined;
  if (flags.report) throw new CliInputError('with --queue, the report comes from the run state: mailstage batch --status RUN --queue … --report FILE');
  const g = globals(command);
  const loaded = await loadCliConfig(g);
  if (!loaded.config.batch) throw new BatchInputError(`the config${loaded.filepath ? ` (${loaded.filepath})` : ''} has no \`batch\` section`);
  const { enqueueRun } = await import('../queue/enqueue.js');
  const result = await enqueueRun({
    config: loaded.config,
    baseDir: configDir(loaded),
    queue: flags.queue,
    ...(flags.run ? { run: flags.run } : {}),
    ...(flags.limit ? { limit: flags.limit } : {}),
  });
  return result.exitCode;
}

/** V8's full GC, exposed at run time (see BatchOptions.collectGarbage); undefined if refused. */
function fullGc(): (() => void) | undefined {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}
