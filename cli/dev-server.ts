/** `mailstage dev-server`: the embedded sink, until Ctrl-C. */
import path from 'node:path';
import type { Command } from 'commander';
import type { StoredMessage } from '../devserver/sink.js';
import { action, positiveInt } from './common.js';

export function devServerCommand(program: Command): void {
  program
    .command('dev-server')
    .description('an SMTP/LMTP sink for development: any AUTH, STARTTLS, every message stored as .eml')
    .option('--port <n>', 'port (default 2525; 2424 with --lmtp)', positiveInt('--port'))
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--dir <folder>', 'where the .eml files go', '.mailstage/inbox')
    .option('--lmtp', 'speak LMTP instead of SMTP')
    .action(action(async (flags: { port?: number; host: string; dir: string; lmtp?: boolean }) => {
      // Loaded on use: smtp-server is not needed by the other commands (and costs memory).
      const { startDevServer } = await import('../devserver/sink.js');
      const server = await startDevServer({
        port: flags.port ?? (flags.lmtp ? 2424 : 2525),
        host: flags.host,
        dir: flags.dir,
        lmtp: flags.lmtp === true,
        onMessage: (m) => process.stdout.write(`${messageLine(m)}\n`),
      });
      const scheme = server.lmtp ? 'lmtp' : 'smtp';
      process.stdout.write(`mailstage dev sink on ${scheme}://${server.host}:${server.port} (STARTTLS, any AUTH), storing in ${server.dir} — Ctrl-C to stop\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
      process.stdout.write(`stopped; ${server.count()} message(s) stored in ${server.dir}\n`);
    }));
}

export function messageLine(m: StoredMessage): string {
  const time = new Date().toISOString().slice(11, 19);
  return `${time} <${m.from}> → ${m.to.join(', ')}  ${JSON.stringify(m.subject ?? '')}  ${m.size} B${m.secure ? ' TLS' : ''}${m.user ? ` auth=${m.user}` : ''}  ${path.basename(m.file)}`;
}
