/** `mailstage probe <target>`. */
import type { Command } from 'commander';
import { action, globals, positiveInt } from './common.js';
import { printableJson } from '../core/printable.js';
import { formatProbe, parseProbeTarget, probe } from './probe.js';

export function probeCommand(program: Command): void {
  program
    .command('probe')
    .description('report what a server offers: greeting, EHLO, STARTTLS/certificate, AUTH, SIZE, extensions')
    .argument('<target>', 'smtp://host:port, smtps://host:port, lmtp://host:port or /path/to/socket')
    .option('--json', 'the report as JSON')
    .option('--lmtp', 'a unix socket speaks LMTP')
    .option('--no-starttls', 'do not try STARTTLS')
    .option('--ehlo <name>', 'the name to EHLO/LHLO with')
    .option('--timeout <ms>', 'per-step timeout', positiveInt('--timeout'), 10_000)
    .addHelpText('after', '\nNothing is sent: the probe QUITs after the capability checks. Exit 1 when the server cannot be reached.')
    .action(action(async (target: string, flags: { json?: boolean; lmtp?: boolean; starttls: boolean; ehlo?: string; timeout: number }, command: Command) => {
      const report = await probe(parseProbeTarget(target, { lmtp: flags.lmtp === true }), {
        timeout: flags.timeout,
        starttls: flags.starttls,
        ...(flags.ehlo ? { localHostname: flags.ehlo } : {}),
        debug: globals(command).debug === true,
      });
      process.stdout.write(`${flags.json ? printableJson(report, 2) : formatProbe(report)}\n`);
    }));
}
