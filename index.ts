/**
 * mailstage — the package entry. Re-exports the public API and wires the defaults that core does
 * not know: the standard plugin set for clients created without `plugins`, and the built-in
 * message builders.
 *
 * Importing it must stay cheap for a program that only sends (`SmtpClient`): nothing here may
 * evaluate zod, cosmiconfig, jiti, mimetext, libmime, handlebars, smtp-server, selfsigned, csv-parse
 * or cli-progress. Synchronous APIs that need one load it on first call (core/lazy.ts); asynchronous
 * ones import their module on first call (below). test/entry-cost.test.ts checks this.
 */
import { SmtpClient as SessionClient, registerBuiltinMessageBuilders, type SmtpClientOptions } from './core/client.js';
import { registerDefaultPlugins } from './core/mailer.js';
import { defaultMessageBuilders } from './core/message/index.js';
import type { Plugin } from './core/plugin.js';
import authCramMd5 from './plugins/auth-cram-md5/index.js';
import authLogin from './plugins/auth-login/index.js';
import authPlain from './plugins/auth-plain/index.js';
import dsn from './plugins/dsn/index.js';
import type { BatchOptions, BatchResult, Row, SourceSpec } from './runner/index.js';
import type { DevServer, DevServerOptions } from './devserver/index.js';

export * from './api.js';
export type {
  SmtpClientOptions, TlsMode, TlsOptions, SendmailOptions, SendmailResult, SendMessageOptions,
  SendMessageResult, DataReply, RcptOptionsInput,
} from './core/client.js';
export type { Timeouts } from './core/connection.js';
export { DEFAULT_TIMEOUTS } from './core/connection.js';
export type { EnvelopeOptions } from './core/stages/envelope.js';
export type { DebugOption, DebugLevel, DebugSink, TranscriptEvent } from './core/transcript.js';
export { createReplyParser } from './core/protocol/reply.js';
export { parseCapabilities } from './core/protocol/capabilities.js';
export {
  buildMessage, defaultMessageBuilders, mimeBuilder, rawBuilder, compileTemplates, envelopeFromMessage, parseAddressList,
  TemplateRenderError,
} from './core/message/index.js';
export { defineConfig, env, loadConfig, findConfig, resolveConfig, formatConfig, ConfigError } from './core/config/index.js';
export type { MailstageConfig, ResolvedConfig, LoadedConfig } from './core/config/index.js';
export {
  createMailer, loadMailer, isDeliveryUnknown, SmtpDeliveryUnknownError, SmtpRecipientRefusedError,
} from './core/mailer.js';
export type { Mailer, SendMailInfo, MailerOptions, MailerConfig, MailerEvent, MailerListener } from './core/mailer.js';

/** The plugins a client gets when it names none: smtplib's AUTH mechanisms and DSN. */
export function defaultPlugins(): Plugin[] {
  return [authCramMd5(), authPlain(), authLogin(), dsn()];
}

/**
 * One SMTP/LMTP session (smtplib.SMTP, SMTP_SSL and LMTP in one class). Without `plugins` it gets
 * `defaultPlugins()`; with `plugins` exactly those.
 */
export class SmtpClient extends SessionClient {
  constructor(options: SmtpClientOptions = {}) {
    super(options.plugins ? options : { ...options, plugins: defaultPlugins() });
  }
}

// The default message builders (raw, then MIME) for sendMessage and the Mailer.
registerBuiltinMessageBuilders(defaultMessageBuilders());
// The Mailer's plugins when a config names none.
registerDefaultPlugins(defaultPlugins);

// The batch runner and the dev sink (issue 5), for programs that drive a mailing themselves. What
// only runs asynchronously (a batch, reading rows, the sink) loads its modules on first call, so a
// program that only sends does not pay for csv-parse, cli-progress, smtp-server and selfsigned.
export { mailerSender } from './runner/sender.js';
export { BatchInputError } from './runner/errors.js';
export { createRenderer, messageIdFor, RowError } from './runner/render.js';
export { readJournal, findInterruptedRun } from './runner/journal.js';
export type { BatchOptions, BatchResult, Sender, SendInfo, MailerLike, Row, RenderedRow, Summary, Totals, ReportRow, JournalRecord } from './runner/index.js';
export type { DevServer, DevServerOptions, StoredMessage } from './devserver/index.js';

/** Runs a batch (see runner/batch.ts); the runner is loaded on the first call. */
export async function runBatch(options: BatchOptions): Promise<BatchResult> {
  return (await import('./runner/batch.js')).runBatch(options);
}

/** The rows of a CSV/JSON/JSONL source (see runner/source.ts); loaded on the first call. */
export async function* readRows(spec: SourceSpec): AsyncGenerator<Row> {
  yield* (await import('./runner/source.js')).readRows(spec);
}

/** Starts the embedded dev sink (see devserver/sink.ts); loaded on the first call. */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  return (await import('./devserver/sink.js')).startDevServer(options);
}
