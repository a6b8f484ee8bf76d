/** `mailstage worker`: sends queued batch rows (issue 8) until SIGTERM/SIGINT. */
import type { Command } from 'commander';
import { createMailer, isDeliveryUnknown } from '../index.js';
import { BatchInputError, oneLine } from '../runner/errors.js';
import { mailerSender } from '../runner/sender.js';
import { action, CliInputError, globals, loadCliConfig, positiveInt } from './common.js';

interface WorkerFlags {
  readonly queue?: string;
  readonly concurrency?: number;
  readonly lockMs?: number;
}

export function workerCommand(program: Command): void {
  program
    .command('worker')
    .description('send the rows that `batch --queue … --send` enqueued, through the configured transport; any number, on any hosts')
    .requiredOption('--queue <url>', 'the Redis holding the queue: redis://host:port/db')
    .option('--concurrency <n>', 'messages in flight in this process (default: batch.concurrency, else 4)', positiveInt('--concurrency'))
    .option('--lock-ms <ms>', 'how soon another worker takes over the jobs of one that died (default 30000)', positiveInt('--lock-ms'))
    .addHelpText('after', `
Runs until SIGTERM or SIGINT, then stops taking jobs, finishes the messages in flight and exits 0
(a second signal exits at once; its jobs go to another worker). The rate limit is the queue's, set
from batch.rateLimit by the enqueuing command, and holds across all workers.`)
    .action(action(async (flags: WorkerFlags, command: Command) => {
      if (flags.queue === undefined) throw new CliInputError('--queue is required');
      const g = globals(command);
      const loaded = await loadCliConfig(g);
      const { parseQueueUrl } = await import('../queue/connection.js');
      const target = parseQueueUrl(flags.queue);
      const sender = mailerSender(createMailer(loaded, g.debug ? { debug: 1 } : {}), isDeliveryUnknown);
      try {
        await sender.verify?.();
      } catch (error) {
        await sender.close().catch(() => {});
        throw new BatchInputError(`cannot use the server: ${oneLine(error)}`, { cause: error });
      }
      const { startWorker } = await import('../queue/worker.js');
      const concurrency = flags.concurrency ?? loaded.config.batch?.concurrency ?? 4;
      const worker = await startWorker({
        queue: flags.queue, sender, concurrency, ...(flags.lockMs ? { lockMs: flags.lockMs } : {}),
        log: (line) => process.stderr.write(`mailstage: ${line}\n`),
      });
      process.stdout.write(`worker ${worker.name} ready on ${target.display} (concurrency ${concurrency})\n`);
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (name: string) => (): void => {
          signals++;
          if (signals > 1) {
            process.stderr.write(`mailstage: ${name} again, exiting now (jobs in flight go to another worker)\n`);
            process.exit(130);
          }
          process.stderr.write(`mailstage: ${name}: finishing the messages in flight\n`);
          resolve();
        };
        process.on('SIGINT', onSignal('SIGINT'));
        process.on('SIGTERM', onSignal('SIGTERM'));
      });
      await worker.close();
      process.stdout.write(`worker ${worker.name} stopped after ${worker.processed()} job(s)\n`);
      return 0;
    }));
}
