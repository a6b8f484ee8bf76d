#!/usr/bin/env node
/**
 * The `mailstage` command line. Each command lives in its own file; this one wires them under the
 * global options and makes every way out an exit code: 0 ok, 1 delivery failures, 2 bad input or
 * config (usage errors included), 130 a batch stopped by Ctrl-C/SIGTERM.
 */
import { Command, CommanderError } from 'commander';
import { batchCommand } from './batch.js';
import { describeError, EXIT_INPUT, exitCodeOf } from './common.js';
import { configCommand } from './config.js';
import { demoCommand } from './demo.js';
import { devServerCommand } from './dev-server.js';
import { dkimCommand } from './dkim.js';
import { probeCommand } from './probe-command.js';
import { sendCommand } from './send.js';
import { workerCommand } from './worker.js';

export function buildProgram(): Command {
  const program = new Command('mailstage')
    .description('send mail over SMTP and LMTP: batch mailings, one-off messages, server probes, a dev sink')
    .option('--config <file>', 'config file (default: discovered from the current folder)')
    .option('--env <name>', 'environment from the config (default: MAILSTAGE_ENV, then NODE_ENV)')
    .option('--debug', 'stack traces and the protocol transcript')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', '\nExit codes: 0 ok, 1 delivery failures, 2 bad input or config, 130 batch interrupted.');
  batchCommand(program);
  workerCommand(program);
  sendCommand(program);
  probeCommand(program);
  configCommand(program);
  dkimCommand(program);
  devServerCommand(program);
  demoCommand(program);
  // Usage errors (unknown option, missing argument) are bad input: exit 2, like a bad config.
  const override = (command: Command): void => {
    command.exitOverride();
    command.commands.forEach(override);
  };
  override(program);
  return program;
}

async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and --version are not errors; commander already printed the message for the others.
      process.exitCode = error.exitCode === 0 ? 0 : EXIT_INPUT;
      return;
    }
    process.stderr.write(`mailstage: ${describeError(error)}\n`);
    if (argv.includes('--debug') && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    process.exitCode = exitCodeOf(error);
  }
}

await main(process.argv);
