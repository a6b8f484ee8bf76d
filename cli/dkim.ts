/**
 * `mailstage dkim record`: checks every key of the config's dkim plugin (readable, RSA ≥ 1024 bits
 * or Ed25519) and prints the DNS TXT record to publish for each selector, as zone-file lines with
 * the value split into strings of at most 255 characters. Any bad key: its error on stderr, exit 2.
 */
import type { Command } from 'commander';
import { printable } from '../core/printable.js';
import type { Plugin } from '../core/plugin.js';
import type { DkimPlugin } from '../plugins/dkim/index.js';
import { action, CliInputError, configDir, describeError, EXIT_INPUT, globals, loadCliConfig } from './common.js';

/** The config's dkim plugins: found by name and shape, not identity (the config file may load
 *  the plugin from the built package while the CLI runs from source, or the reverse). */
export function dkimPlugins(plugins: readonly Plugin[] | undefined): DkimPlugin[] {
  return (plugins ?? []).filter((p): p is DkimPlugin =>
    p.name === 'dkim' && typeof (p as Partial<DkimPlugin>).checkKeys === 'function');
}

export function dkimCommand(program: Command): void {
  const dkim = program.command('dkim').description('DKIM keys of the config\'s dkim plugin');
  dkim
    .command('record')
    .description('check each signing key and print the DNS TXT record to publish for it; exit 2 on a bad key')
    .option('--json', 'the records as JSON')
    .action(action(async (flags: { json?: boolean }, command: Command) => {
      const loaded = await loadCliConfig(globals(command));
      const plugins = dkimPlugins(loaded.config.plugins);
      if (plugins.length === 0) throw new CliInputError(`${loaded.filepath ?? 'the config'} has no dkim plugin in plugins`);
      const records = [];
      let bad = 0;
      for (const plugin of plugins) {
        plugin.configure({ baseDir: configDir(loaded) });
        for (const result of await plugin.checkKeys()) {
          if ('error' in result) {
            bad++;
            process.stderr.write(`mailstage: ${printable(describeError(result.error))}\n`);
          } else {
            records.push(result.record);
          }
        }
      }
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
      } else {
        for (const r of records) {
          const size = r.bits === undefined ? '' : `, ${r.bits} bits`;
          const where = r.domain === '*' ? '; domain \'*\': publish under every From domain it signs for' : '';
          process.stdout.write(`; ${printable(r.selector)} (${r.algorithm}${size})${where}\n${printable(r.zoneLine)}\n`);
        }
      }
      return bad > 0 ? EXIT_INPUT : undefined;
    }));
}
