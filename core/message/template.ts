/**
 * Handlebars templates for subject, text and html: compiled once, rendered per row. HTML output is
 * escaped; text and subject are not (escaping `&` in a plain-text mail is a bug, and a subject is
 * protected from header injection by the builder, which refuses CR/LF). Strict: a variable the data
 * lacks is an error naming it and the row, never an empty string in a sent mail.
 */
import { readFileSync } from 'node:fs';
import type Handlebars from 'handlebars';
import { lazyRequire } from '../lazy.js';
import { SmtpInvalidInputError } from '../errors.js';

const handlebars = lazyRequire<typeof Handlebars>('handlebars');

export type TemplatePart = 'subject' | 'text' | 'html';
export type TemplateSource = string | { readonly path: string };

export interface TemplateSources {
  readonly subject?: TemplateSource;
  readonly text?: TemplateSource;
  readonly html?: TemplateSource;
}

export interface TemplateOptions {
  /** Extra helpers, added to (or replacing) the built-in `upper`, `lower`, `default`, `date`. */
  readonly helpers?: Readonly<Record<string, Handlebars.HelperDelegate>>;
  /** Extra partials by name (strings). */
  readonly partials?: Readonly<Record<string, string>>;
}

export interface RenderOptions {
  /** The data row, named in errors (a batch's CSV line, say). */
  readonly row?: number;
}

export interface RenderedTemplates {
  readonly subject?: string;
  readonly text?: string;
  readonly html?: string;
}

export interface CompiledTemplates {
  render(data: unknown, options?: RenderOptions): RenderedTemplates;
}

/** A missing variable (or a template that failed) while rendering. */
export class TemplateRenderError extends SmtpInvalidInputError {
  readonly part: TemplatePart;
  readonly variable?: string;
  readonly row?: number;
  constructor(part: TemplatePart, message: string, details: { variable?: string; row?: number; cause?: unknown }) {
    super(`template ${part}`, `${message}${details.row === undefined ? '' : ` (row ${details.row})`}`, { cause: details.cause });
    this.part = part;
    this.variable = details.variable;
    this.row = details.row;
  }
}

const BUILT_IN_HELPERS: Readonly<Record<string, Handlebars.HelperDelegate>> = {
  upper: (value: unknown) => (value === undefined || value === null ? '' : String(value).toUpperCase()),
  lower: (value: unknown) => (value === undefined || value === null ? '' : String(value).toLowerCase()),
  // Helper arguments are looked up leniently even in strict mode, so `default` can see a missing field.
  default: (value: unknown, fallback: unknown) => (value === undefined || value === null || value === '' ? fallback : value),
  /** `{{date sentAt}}` → 2026-11-03; `{{date sentAt "en-GB"}}` → the locale's date. */
  date: (value: unknown, ...rest: unknown[]) => {
    const date = value instanceof Date ? value : new Date(String(value));
    if (Number.isNaN(date.getTime())) return String(value);
    const locale = rest.length > 1 && typeof rest[0] === 'string' ? rest[0] : undefined;
    return locale === undefined ? date.toISOString().slice(0, 10) : date.toLocaleDateString(locale);
  },
};

function loadSource(part: TemplatePart, source: TemplateSource): string {
  if (typeof source === 'string') return source;
  try {
    return readFileSync(source.path, 'utf8');
  } catch (error) {
    throw new SmtpInvalidInputError(`template ${part}`, `cannot read ${source.path}: ${(error as Error).message}`, { cause: error });
  }
}

export function compileTemplates(sources: TemplateSources, options: TemplateOptions = {}): CompiledTemplates {
  // A private environment: helpers and partials of one template set never leak into another.
  const hbs = handlebars().create();
  hbs.registerHelper({ ...BUILT_IN_HELPERS, ...options.helpers });
  for (const [name, partial] of Object.entries(options.partials ?? {})) hbs.registerPartial(name, partial);

  const compiled = (['subject', 'text', 'html'] as const).flatMap((part) => {
    const source = sources[part];
    if (source === undefined) return [];
    const text = loadSource(part, source);
    try {
      // Handlebars compiles lazily; parse now so a syntax error surfaces here, not at the first row.
      hbs.parse(text);
    } catch (error) {
      throw new SmtpInvalidInputError(`template ${part}`, (error as Error).message, { cause: error });
    }
    const template = hbs.compile(text, { strict: true, noEscape: part !== 'html' });
    return [[part, template] as const];
  });

  return {
    render(data, renderOptions = {}) {
      const out: Record<string, string> = {};
      for (const [part, template] of compiled) {
        try {
          out[part] = template(data);
        } catch (error) {
          const variable = missingVariable(error);
          throw new TemplateRenderError(
            part,
            variable === undefined ? (error as Error).message : `missing variable "${variable}"`,
            { variable, row: renderOptions.row, cause: error },
          );
        }
      }
      return out as RenderedTemplates;
    },
  };
}

function missingVariable(error: unknown): string | undefined {
  return /^"([^"]+)" not defined in/.exec((error as Error)?.message ?? '')?.[1];
}
