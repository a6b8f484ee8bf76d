/** `mailstage batch`: the config's mailing — a dry run unless --send. */
import v8 from 'node:v8';
import vm from 'node:vm';
import type { Command } from 'commander';
import { createMailer, isDeliveryUnknown } from '../index.js';
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
    .option('--queue <url>', 'enqueue on a distributed queue (not available yet)')
    .option('--status <run>', 'show a queued run\'s progress (not available yet)')
    .addHelpText('after', `
Exit codes: 0 every row sent (or valid, on a dry run), 1 delivery failures, 2 bad input or config,
130 stopped by Ctrl-C/SIGTERM (rows in flight finish; continue with --send --resume).`)
    .action(action(async (flags: BatchFlags, command: Command) => {
      if (flags.queue !== undefined || flags.status !== undefined) {
        throw new CliInputError(`${flags.queue !== undefined ? '--queue' : '--status'} is not available yet (distributed queue: issue 8); run without it to send in-process`);
      }
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
