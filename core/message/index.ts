/**
 * The message stage: builders that turn what the user gives (a nodemailer-style object, a raw
 * message) into an envelope and a body stream, plus the address, envelope and template tools
 * they are made of.
 */
import { SmtpInvalidInputError } from '../errors.js';
import type { BuildContext, MessageBuilder } from '../plugin.js';
import { mimeBuilder } from './build.js';
import { rawBuilder } from './raw.js';
import type { BuiltMessage, MailMessage } from './types.js';

export {
  parseAddressList, formatAddressList, addressTokens, needsSmtpUtf8, type ParsedAddress,
} from './address.js';
export { envelopeFromMessage, envelopeFromHeaders, parseHeaderSection, type HeaderField } from './envelope.js';
export { mimeBuilder, buildMimeMessage } from './build.js';
export { rawBuilder, buildRawMessage } from './raw.js';
export {
  compileTemplates, TemplateRenderError, type CompiledTemplates, type RenderedTemplates, type RenderOptions,
  type TemplateOptions, type TemplatePart, type TemplateSource, type TemplateSources,
} from './template.js';
export { encodeWords, foldHeader } from './headers.js';
export type * from './types.js';

/** The built-in builders in the order they must be tried: raw first (it matches `message.raw`),
 *  then the default, which matches everything else. Plugin builders go before these. */
export function defaultMessageBuilders(): readonly MessageBuilder[] {
  return [rawBuilder(), mimeBuilder()];
}

/** Builds with the first builder whose `matches` accepts the message. */
export async function buildMessage(
  message: MailMessage,
  builders: readonly MessageBuilder[] = defaultMessageBuilders(),
  ctx: BuildContext,
): Promise<BuiltMessage> {
  const builder = builders.find((b) => b.matches(message));
  if (builder === undefined) {
    throw new SmtpInvalidInputError('message', `no message builder accepts it (tried ${builders.map((b) => b.name).join(', ') || 'none'})`);
  }
  return builder.build(message, ctx);
}
