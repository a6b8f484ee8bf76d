/** `mailstage send`: one message, from flags or as a ready `.eml` on stdin. */
import type { Command } from 'commander';
import { createMailer, resolveConfig, type LoadedConfig } from '../index.js';
import { envelopeFromHeaders, parseHeaderSection } from '../core/message/index.js';
import type { Attachment, MailMessage } from '../core/message/types.js';
import { action, CliInputError, EXIT_DELIVERY, EXIT_OK, globals, loadCliConfig } from './common.js';

interface SendFlags {
  readonly from?: string;
  readonly to: string[];
  readonly cc: string[];
  readonly bcc: string[];
  readonly subject?: string;
  readonly text?: string;
  readonly html?: string;
  readonly attach: string[];
  readonly header: string[];
  readonly server?: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

export function sendCommand(program: Command): void {
  program
    .command('send')
    .description('send one message, from flags or as a .eml on stdin')
    .option('--from <address>', 'sender (default: message.from from the config)')
    .option('--to <address>', 'recipient (repeatable, or a comma-separated list)', collect, [])
    .option('--cc <address>', 'copy recipient (repeatable)', collect, [])
    .option('--bcc <address>', 'blind copy recipient (repeatable; only in the envelope)', collect, [])
    .option('--subject <text>', 'subject')
    .option('--text <text>', 'plain-text body')
    .option('--html <html>', 'HTML body')
    .option('--attach <file>', 'attach a file (repeatable)', collect, [])
    .option('--header <name:value>', 'extra header (repeatable)', collect, [])
    .option('--server <url>', 'smtp://[user:pass@]host:port, smtps://… or lmtp://… instead of the config\'s transport')
    .addHelpText('after', `
Without --subject, --text, --html or --attach, the message is read from stdin as a complete .eml
(its envelope from the headers unless --from/--to are given; Bcc is removed from the copy sent).
Exit codes: 0 sent to every recipient, 1 refused or failed, 2 bad input or config.`)
    .action(action(async (flags: SendFlags, command: Command) => {
      const g = globals(command);
      const loaded: LoadedConfig = flags.server
        ? resolveConfig({ transport: { url: flags.server } }, g.env ? { env: g.env } : {})
        : await loadCliConfig(g);
      const fromFlags = flags.subject !== undefined || flags.text !== undefined || flags.html !== undefined || flags.attach.length > 0;
      const message = fromFlags ? messageFromFlags(flags, loaded) : await messageFromStdin(flags);
      const mailer = createMailer(loaded, g.debug ? { debug: 1 } : {});
      try {
        const info = await mailer.sendMail(message);
        process.stdout.write(`sent ${info.messageId} to ${info.accepted.join(', ')}: ${info.response}\n`);
        if (info.rejected.length > 0) {
          process.stdout.write(`refused: ${info.rejected.join(', ')}\n`);
          for (const e of info.rejectedErrors ?? []) process.stderr.write(`mailstage: ${e.message}\n`);
          return EXIT_DELIVERY;
        }
        return EXIT_OK;
      } finally {
        await mailer.close();
      }
    }));
}

function split(list: readonly string[]): string[] {
  return list.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

function messageFromFlags(flags: SendFlags, loaded: LoadedConfig): MailMessage {
  const to = split(flags.to);
  if (to.length === 0 && flags.cc.length === 0 && flags.bcc.length === 0) throw new CliInputError('send: give at least one --to (or --cc/--bcc)');
  const from = flags.from ?? loaded.config.message?.from;
  if (!from) throw new CliInputError('send: --from is required (the config sets no message.from)');
  const headers: Record<string, string> = {};
  for (const h of flags.header) {
    const i = h.indexOf(':');
    if (i <= 0) throw new CliInputError(`send: --header ${JSON.stringify(h)} is not "Name: value"`);
    headers[h.slice(0, i).trim()] = h.slice(i + 1).trim();
  }
  const attachments: Attachment[] = flags.attach.map((p) => ({ path: p }));
  return {
    from,
    to,
    ...(flags.cc.length > 0 ? { cc: split(flags.cc) } : {}),
    ...(flags.bcc.length > 0 ? { bcc: split(flags.bcc) } : {}),
    subject: flags.subject ?? '',
    ...(flags.text !== undefined ? { text: flags.text } : {}),
    ...(flags.html !== undefined ? { html: flags.html } : {}),
    ...(attachments.length > 0 ? { attachments } : {}),
    ...(Object.keys(headers).length > 0 ? { headers } : {}),
  };
}

async function messageFromStdin(flags: SendFlags): Promise<MailMessage> {
  if (process.stdin.isTTY) {
    throw new CliInputError('send: nothing to send; give --subject/--text/--html, or pipe a .eml on stdin (see --help)');
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  if (raw.length === 0) throw new CliInputError('send: stdin was empty (expected a .eml message)');
  const to = [...split(flags.to), ...split(flags.cc), ...split(flags.bcc)];
  // The envelope comes from the headers as written (Bcc included), then Bcc is cut from the copy
  // that goes out, as sendmail -t does: blind copies must not show their list to every recipient.
  const fromHeaders = envelopeFromHeaders(parseHeaderSection(raw));
  return {
    raw: stripBcc(raw),
    envelope: { from: flags.from ?? fromHeaders.from, to: to.length > 0 ? to : [...fromHeaders.to] },
  };
}

/** Removes Bcc fields (with their folded lines) from the header section. */
export function stripBcc(raw: Buffer): Buffer {
  const text = raw.toString('latin1'); // byte-preserving
  const end = text.search(/\r?\n\r?\n/);
  const head = end < 0 ? text : text.slice(0, end);
  const kept = head.replace(/^bcc:.*(?:\r?\n[ \t].*)*(?:\r?\n|$)/gim, '');
  return kept === head ? raw : Buffer.from(kept + (end < 0 ? '' : text.slice(end)), 'latin1');
}
