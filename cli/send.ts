/** `mailstage send`: one message, from flags or as a ready `.eml` on stdin. */
import type { Command } from 'commander';
import { createMailer, defaultPlugins, resolveConfig, type LoadedConfig } from '../index.js';
import { envelopeFromHeaders } from '../core/message/index.js';
import type { Attachment, MailMessage } from '../core/message/types.js';
import { printable } from '../core/printable.js';
import lmtp from '../plugins/lmtp/index.js';
import { action, CliInputError, EXIT_DELIVERY, EXIT_OK, globals, loadCliConfig } from './common.js';
import { readStdinMessage } from './stdin-message.js';

export { stripBcc } from './stdin-message.js';

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
  readonly tls?: TlsFlag;
  readonly insecure?: boolean;
}

const TLS_MODES = ['none', 'opportunistic', 'required', 'implicit'] as const;
type TlsFlag = (typeof TLS_MODES)[number];

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
    .option('--server <url>', 'smtp://[user:pass@]host:port, smtps://… (implicit TLS) or lmtp://… instead of the config\'s transport; ?tls=MODE and ?insecure=true may follow')
    .option('--tls <mode>', 'none | opportunistic (STARTTLS when offered) | required (STARTTLS or fail) | implicit (TLS from the first byte)', tlsMode)
    .option('--insecure', 'do not verify the server\'s certificate: for dev sinks only (mailstage dev-server makes a self-signed one)')
    .addHelpText('after', `
Without --subject, --text, --html or --attach, the message is read from stdin as a complete .eml
(its envelope from the headers unless --from/--to are given; Bcc is removed from the copy sent;
Message-ID and Date are added when it has none, every other header is sent as it is).
--tls and --insecure apply to --server or to the config's transport.
Exit codes: 0 sent to every recipient, 1 refused or failed, 2 bad input or config.`)
    .action(action(async (flags: SendFlags, command: Command) => {
      const g = globals(command);
      const loaded = withTlsFlags(flags.server ? serverConfig(flags.server, g.env) : await loadCliConfig(g), flags);
      const fromFlags = flags.subject !== undefined || flags.text !== undefined || flags.html !== undefined || flags.attach.length > 0;
      const message = fromFlags ? messageFromFlags(flags, loaded) : await messageFromStdin(flags);
      const mailer = createMailer(loaded, g.debug ? { debug: 1 } : {});
      try {
        const info = await mailer.sendMail(message);
        process.stdout.write(`sent ${printable(info.messageId)} to ${info.accepted.map((a) => printable(a)).join(', ')}: ${printable(info.response)}\n`);
        if (info.rejected.length > 0) {
          process.stdout.write(`refused: ${info.rejected.map((a) => printable(a)).join(', ')}\n`);
          for (const e of info.rejectedErrors ?? []) process.stderr.write(`mailstage: ${printable(e.message)}\n`);
          return EXIT_DELIVERY;
        }
        return EXIT_OK;
      } catch (error) {
        throw withCertificateHint(error, flags);
      } finally {
        await mailer.close();
      }
    }));
}

function tlsMode(value: string): TlsFlag {
  if (!(TLS_MODES as readonly string[]).includes(value)) throw new CliInputError(`--tls must be one of ${TLS_MODES.join(', ')}, got ${JSON.stringify(value)}`);
  return value as TlsFlag;
}

/**
 * `--server URL` as a config. The URL's own query may carry `tls=MODE` and `insecure=true`; any
 * other parameter is refused rather than ignored.
 */
function serverConfig(server: string, env: string | undefined): LoadedConfig {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CliInputError(`--server: expected smtp://[user:pass@]host:port, smtps://… or lmtp://…, got ${JSON.stringify(printable(server))}`);
  }
  const transport: Record<string, unknown> = {};
  for (const [key, value] of url.searchParams) {
    if (key === 'tls') transport.tls = tlsMode(value);
    else if (key === 'insecure' && (value === 'true' || value === '1' || value === '')) transport.tlsOptions = { rejectUnauthorized: false };
    else throw new CliInputError(`--server: unknown URL parameter ${JSON.stringify(printable(`${key}=${value}`))} (known: tls=MODE, insecure=true)`);
  }
  if (url.protocol === 'smtps:' && transport.tls !== undefined && transport.tls !== 'implicit') {
    throw new CliInputError(`--server: smtps:// is TLS from the first byte; tls=${String(transport.tls)} contradicts it (use smtp:// for STARTTLS)`);
  }
  url.search = '';
  // lmtp:// needs the LHLO greeting; the other default plugins bring AUTH and DSN.
  const plugins = url.protocol === 'lmtp:' ? { plugins: [...defaultPlugins(), lmtp()] } : {};
  return resolveConfig({ ...plugins, transport: { url: url.href, ...transport } }, env ? { env } : {});
}

/** --tls and --insecure on top of whatever transport the config or URL gave. */
function withTlsFlags(loaded: LoadedConfig, flags: SendFlags): LoadedConfig {
  if (flags.tls === undefined && flags.insecure !== true) return loaded;
  const transport = loaded.config.transport ?? {};
  if (flags.tls !== undefined && flags.tls !== 'implicit' && transport.url?.startsWith('smtps:')) {
    throw new CliInputError(`--tls ${flags.tls} contradicts --server smtps:// (TLS from the first byte); use smtp:// for STARTTLS`);
  }
  return {
    ...loaded,
    config: {
      ...loaded.config,
      transport: {
        ...transport,
        ...(flags.tls !== undefined ? { tls: flags.tls } : {}),
        ...(flags.insecure ? { tlsOptions: { ...transport.tlsOptions, rejectUnauthorized: false } } : {}),
      },
    },
  };
}

const CERTIFICATE_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'ERR_TLS_CERT_ALTNAME_INVALID', 'CERT_HAS_EXPIRED',
]);

/** A certificate the client would not trust: say how to get past it when it is a dev sink's. */
function withCertificateHint(error: unknown, flags: SendFlags): unknown {
  if (flags.insecure || !(error instanceof Error)) return error;
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && CERTIFICATE_CODES.has(code)) {
      error.message += ' (if this is a dev sink such as mailstage dev-server, add --insecure to skip certificate verification)';
      break;
    }
  }
  return error;
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
  const { raw, fields } = await readStdinMessage(process.stdin);
  const to = [...split(flags.to), ...split(flags.cc), ...split(flags.bcc)];
  const fromHeaders = envelopeFromHeaders(fields);
  return {
    raw,
    envelope: { from: flags.from ?? fromHeaders.from, to: to.length > 0 ? to : [...fromHeaders.to] },
  };
}
