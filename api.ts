/**
 * The plugin author's API: everything a plugin (in this repository or in its own npm package with
 * `mailstage` as a peer dependency) may use. Plugins import this and nothing else from core.
 */
export { definePlugin } from './core/plugin.js';
export type {
  Plugin, Authenticator, AuthContext, TransportStage, TransportTarget, OpenedTransport, GreetingStage,
  DataStage, TlsPolicy, TlsPolicyContext, TlsDecision, EnvelopeExtension, EnvelopeContext, MessageFacts,
  MessageBuilder, BuildContext, SessionHooks, SendOutcome, RouterStage, Route, RouteHost,
  MessageTransform, TransformContext, BuiltForTransform,
} from './core/plugin.js';
// Plugin options may hold env() markers (secrets); a plugin reads them with these until the config
// loader resolves plugin options itself.
export { isEnvRef, ENV_BRAND, type EnvRef, type EnvSpec } from './core/config/env.js';
export * from './core/errors.js';
export type { SmtpReply } from './core/protocol/reply.js';
export { encodeXtext, decodeXtext } from './core/protocol/xtext.js';
export { checkArgument } from './core/protocol/command.js';
export { envelopeAddress, needsSmtpUtf8 } from './core/protocol/address.js';
export type { MailMessage, BuiltMessage, MessageBody, Envelope } from './core/message/types.js';
