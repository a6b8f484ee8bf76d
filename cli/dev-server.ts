/** `mailstage dev-server`: the embedded sink and its web inbox, until Ctrl-C. */
import path from 'node:path';
import type { Command } from 'commander';
import { printable } from '../core/printable.js';
import type { DevServer, RefusedMessage, StoredMessage } from '../devserver/sink.js';
import { action, CliInputError, positiveInt } from './common.js';

/** The inbox's port unless --web-port says otherwise (next to the sink's 2525). */
export const DEFAULT_WEB_PORT = 2580;

interface DevServerFlags {
  readonly port?: number;
  readonly host: string;
  readonly dir: string;
  readonly lmtp?: boolean;
  readonly size?: number;
  readonly webPort?: number;
  readonly web: boolean;
}

export function devServerCommand(program: Command): void {
  program
    .command('dev-server')
    .description('an SMTP/LMTP sink for development: any AUTH, STARTTLS, every message stored as .eml and shown in a web inbox')
    .option('--port <n>', 'port (default 2525; 2424 with --lmtp; 0 = any free port)', portNumber('--port'))
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--dir <folder>', 'where the .eml files go', '.mailstage/inbox')
    .option('--lmtp', 'speak LMTP instead of SMTP')
    .option('--size <bytes>', 'the SIZE limit advertised and enforced (default 52428800, 50 MiB)', positiveInt('--size'))
    .option('--web-port <n>', `port of the web inbox on 127.0.0.1 (default ${DEFAULT_WEB_PORT}; 0 = any free port)`, portNumber('--web-port'))
    .option('--no-web', 'no web inbox')
    .addHelpText('after', `
The web inbox lists messages as they arrive, shows each one (HTML in a sandboxed frame with remote
content blocked, text, headers, attachments, raw source) and serves the JSON API
GET /api/messages, GET /api/messages/:id, GET /api/messages/:id/raw, DELETE /api/messages.
It listens on 127.0.0.1 only.`)
    .action(action(async (flags: DevServerFlags) => {
      // Loaded on use: smtp-server and mailparser are not needed by the other commands.
      const { startDevServer } = await import('../devserver/sink.js');
      const server = await startDevServer({
        port: flags.port ?? (flags.lmtp ? 2424 : 2525),
        host: flags.host,
        dir: flags.dir,
        lmtp: flags.lmtp === true,
        ...(flags.size !== undefined ? { size: flags.size } : {}),
        web: flags.web ? { port: flags.webPort ?? DEFAULT_WEB_PORT } : false,
        onMessage: (m) => process.stdout.write(`${messageLine(m)}\n`),
        onRefused: (m) => process.stdout.write(`${refusedLine(m)}\n`),
      }).catch((error: Error) => {
        throw new CliInputError(`dev-server: ${error.message}${/in use/.test(error.message) ? ' (choose another with --port / --web-port, 0 for any free one)' : ''}`);
      });
      process.stdout.write(banner(server));
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
      process.stdout.write(`stopped; ${server.count()} message(s) stored in ${server.dir}\n`);
    }));
}

/** What the dev server says on start: where it listens, the inbox, and a command that sends to it. */
export function banner(server: DevServer): string {
  const scheme = server.lmtp ? 'lmtp' : 'smtp';
  const lines = [
    `mailstage dev sink on ${scheme}://${server.host}:${server.port} (STARTTLS, any AUTH), storing in ${server.dir} — Ctrl-C to stop`,
    `SIZE limit: ${server.sizeLimit} bytes (larger messages get 552 and are not stored)`,
  ];
  if (server.inboxUrl) lines.push(`inbox: ${server.inboxUrl}`);
  lines.push(`try: ${sendCommandFor(server)}`);
  if (server.skipped.length > 0) {
    lines.push(`note: ${server.skipped.length} .eml file(s) in ${server.dir} are not in the inbox:`);
    for (const s of server.skipped) lines.push(`  ${printable(path.basename(s.file))}: ${printable(s.reason)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** A `mailstage send` command line that delivers a first message to this sink. */
export function sendCommandFor(server: Pick<DevServer, 'host' | 'port' | 'lmtp'>): string {
  // A sink on every address is still reached on loopback.
  const host = server.host === '0.0.0.0' || server.host === '::' ? '127.0.0.1' : server.host.includes(':') ? `[${server.host}]` : server.host;
  const scheme = server.lmtp ? 'lmtp' : 'smtp';
  return `npx mailstage send --server ${scheme}://${host}:${server.port} --insecure --from dev@example.test --to you@example.test --subject 'Hello from mailstage' --text 'It works.'`;
}

export function messageLine(m: StoredMessage): string {
  const time = new Date().toISOString().slice(11, 19);
  const to = m.to.map((t) => printable(t)).join(', ');
  return `${time} <${printable(m.from)}> → ${to}  ${printable(JSON.stringify(m.subject ?? ''))}  ${m.size} B${m.secure ? ' TLS' : ''}${m.user ? ` auth=${printable(m.user)}` : ''}  ${path.basename(m.file)}`;
}

export function refusedLine(m: RefusedMessage): string {
  const time = new Date().toISOString().slice(11, 19);
  return `${time} <${printable(m.from)}> → ${m.to.map((t) => printable(t)).join(', ')}  refused: over ${m.limit} B (552), not stored`;
}

/** A port number flag: 0 (any free port) to 65535. */
export function portNumber(name: string): (value: string) => number {
  return (value) => {
    if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new CliInputError(`${name} must be a port number (0-65535), got ${JSON.stringify(value)}`);
    return Number(value);
  };
}
