/**
 * The render stage: one source row → one message. Templates are compiled once (a syntax error stops
 * the run before the first row); rendering is strict, so a variable a row lacks is an error naming
 * both, never an empty string in a sent mail. Addresses are parsed here too, so a dry run catches
 * every bad address without touching the network.
 */
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import path from 'node:path';
import type Handlebars from 'handlebars';
import { lazyRequire } from '../core/lazy.js';
import type { BatchConfig, MessageDefaults } from '../core/config/index.js';
import { SmtpError } from '../core/errors.js';
import { compileTemplates, parseAddressList, TemplateRenderError, type TemplateSource } from '../core/message/index.js';
import type { Attachment, MailMessage } from '../core/message/types.js';
import { BatchInputError, oneLine } from './errors.js';
import type { Row } from './source.js';

const handlebars = lazyRequire<typeof Handlebars>('handlebars');

/** A row that cannot become a message: bad data, a missing variable, a malformed address. */
export class RowError extends Error {
  readonly row: number;
  readonly variable?: string;
  /** The message without the row prefix (for the journal, which has the row number already). */
  readonly reason: string;
  constructor(row: Row, message: string, variable?: string) {
    super(`row ${row.index} (line ${row.line}): ${message}`);
    this.name = 'RowError';
    this.row = row.index;
    this.reason = message;
    this.variable = variable;
  }
}

export interface RenderedRow {
  readonly row: Row;
  readonly message: MailMessage;
  /** The envelope recipients' addresses (to, cc, bcc), for the journal and report. */
  readonly recipients: readonly string[];
  readonly messageId: string;
}

export interface RendererOptions {
  readonly batch: BatchConfig;
  readonly defaults?: MessageDefaults;
  /** Relative template, attachment paths are taken from here (the config file's folder). */
  readonly baseDir: string;
  readonly runId: string;
  /** The Message-ID domain a resumed run recorded (so its ids do not change with the config). */
  readonly messageIdDomain?: string;
}

export interface Renderer {
  (row: Row): RenderedRow;
  /** The domain its Message-IDs use. */
  readonly domain: string;
}

type Field = (row: Row) => string | undefined;

export function createRenderer(options: RendererOptions): Renderer {
  const { batch, baseDir, runId } = options;
  const resolveSource = (s: TemplateSource | undefined): TemplateSource | undefined =>
    s === undefined || typeof s === 'string' ? s : { path: path.resolve(baseDir, s.path) };
  let templates;
  try {
    templates = compileTemplates({
      subject: resolveSource(batch.templates.subject),
      text: resolveSource(batch.templates.text),
      html: resolveSource(batch.templates.html),
    });
  } catch (error) {
    throw new BatchInputError(oneLine(error), { cause: error });
  }
  const hbs = handlebars().create();
  const from = compileField(hbs, batch.from ?? options.defaults?.from, 'from', false);
  const to = compileField(hbs, batch.to, 'to', true);
  const cc = compileField(hbs, batch.cc, 'cc', true);
  const bcc = compileField(hbs, batch.bcc, 'bcc', true);
  const attachments = (batch.attachments ?? []).map((a) => {
    const spec = typeof a === 'string' ? { path: a } : a;
    return { path: compileField(hbs, spec.path, 'attachment', false)!, filename: spec.filename };
  });
  if (from === undefined) throw new BatchInputError('batch.from (or message.from) is required: who is the sender?');
  const domain = options.messageIdDomain ?? batch.messageIdDomain ?? domainOf(batch.from ?? options.defaults?.from) ?? 'mailstage.invalid';

  const render = (row: Row): RenderedRow => {
    try {
      const fromText = need(from(row), row, 'from');
      parseAddressList(fromText, 'from');
      const toText = need(to!(row), row, `to (field "${batch.to}")`);
      const lists = { to: parseAddressList(toText, 'to'), cc: parseAddressList(cc?.(row), 'cc'), bcc: parseAddressList(bcc?.(row), 'bcc') };
      const rendered = templates.render(row.data);
      const messageId = messageIdFor(runId, row.index, domain);
      const files: Attachment[] = attachments.map((a) => {
        const file = path.resolve(baseDir, a.path(row)!);
        if (!isFile(file)) throw new RowError(row, `attachment not found: ${file}`);
        return a.filename === undefined ? { path: file } : { path: file, filename: a.filename };
      });
      const message: MailMessage = {
        from: fromText,
        to: toText,
        ...(lists.cc.length > 0 ? { cc: cc!(row) } : {}),
        ...(lists.bcc.length > 0 ? { bcc: bcc!(row) } : {}),
        ...(options.defaults?.replyTo ? { replyTo: options.defaults.replyTo } : {}),
        ...(options.defaults?.headers ? { headers: options.defaults.headers as Record<string, string> } : {}),
        // A template file ends with a newline, and a header cannot hold one: fold to one line.
        subject: (rendered.subject ?? '').replace(/\s*[\r\n]+\s*/g, ' ').trim(),
        ...(rendered.text === undefined ? {} : { text: rendered.text }),
        ...(rendered.html === undefined ? {} : { html: rendered.html }),
        ...(files.length > 0 ? { attachments: files } : {}),
        messageId,
      };
      const recipients = [...lists.to, ...lists.cc, ...lists.bcc].map((a) => a.address);
      return { row, message, recipients, messageId };
    } catch (error) {
      if (error instanceof RowError) throw error;
      if (error instanceof TemplateRenderError) throw new RowError(row, error.message, error.variable);
      if (error instanceof SmtpError) throw new RowError(row, error.message);
      throw error;
    }
  };
  return Object.assign(render, { domain });
}

/**
 * `to: 'email'` names a column; anything with `{{` is a template over the row. A column that is
 * absent is an error for `to` (every message needs a recipient) and nothing for `cc`/`bcc`.
 */
function compileField(hbs: typeof Handlebars, spec: string | undefined, name: string, isColumn: boolean): Field | undefined {
  if (spec === undefined) return undefined;
  if (!spec.includes('{{')) {
    if (!isColumn) return () => spec;
    return (row) => {
      const v = row.data[spec];
      return v === undefined || v === null || v === '' ? undefined : String(v);
    };
  }
  let template: Handlebars.TemplateDelegate;
  try {
    hbs.parse(spec);
    template = hbs.compile(spec, { strict: true, noEscape: true });
  } catch (error) {
    throw new BatchInputError(`batch.${name}: ${oneLine(error)}`);
  }
  return (row) => {
    try {
      const out = template(row.data).trim();
      return out === '' ? undefined : out;
    } catch (error) {
      const variable = /^"([^"]+)" not defined/.exec((error as Error).message)?.[1];
      throw new RowError(row, variable ? `${name}: missing variable "${variable}"` : `${name}: ${oneLine(error)}`, variable);
    }
  };
}

function need(value: string | undefined, row: Row, what: string): string {
  if (value === undefined) throw new RowError(row, `no ${what}`);
  return value;
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function domainOf(from: string | undefined): string | undefined {
  if (from === undefined || from.includes('{{')) return undefined;
  try {
    const address = parseAddressList(from, 'from')[0]?.address;
    const domain = address?.slice(address.lastIndexOf('@') + 1);
    return domain && /^[A-Za-z0-9.-]+$/.test(domain) ? domain : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Deterministic per run and row, so a resend after a crash carries the same Message-ID and the
 * receiver can drop the duplicate. The hash keeps ids from two installations that happen to pick
 * the same run id apart (it covers the domain) without any state.
 */
export function messageIdFor(runId: string, row: number, domain: string): string {
  const hash = createHash('sha256').update(`${runId}\0${row}\0${domain}`).digest('hex').slice(0, 12);
  return `<${runId}.${row}.${hash}@${domain}>`;
}
