/** `mailstage config check` / `config print`: the resolved config, secrets masked. */
import type { Command } from 'commander';
import { formatConfig } from '../index.js';
import { printable } from '../core/printable.js';
import { action, globals, loadCliConfig } from './common.js';

export function configCommand(program: Command): void {
  const config = program.command('config').description('validate or show the resolved config (secrets masked)');
  config
    .command('check')
    .description('validate the config and show the resolved environment; exit 2 when invalid')
    .action(action(async (_flags: unknown, command: Command) => {
      const loaded = await loadCliConfig(globals(command));
      process.stdout.write(printable(`config ok: ${loaded.filepath ?? '(inline)'}, environment ${loaded.environment ?? '(base)'}\n`, { newlines: true }));
      process.stdout.write(`${printable(formatConfig(loaded), { newlines: true })}\n`);
    }));
  config
    .command('print')
    .description('print the resolved config for the environment')
    .option('--json', 'as JSON (the config object alone)')
    .action(action(async (flags: { json?: boolean }, command: Command) => {
      const loaded = await loadCliConfig(globals(command));
      process.stdout.write(`${printable(formatConfig(loaded, { json: flags.json === true }), { newlines: true })}\n`);
    }));
}
