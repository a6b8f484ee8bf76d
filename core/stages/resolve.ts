/**
 * Wires a plugin list into the stages a session runs. Later plugins override earlier ones for the
 * single-valued stages (transport, greeting, data); list-valued ones accumulate, built-ins first
 * for envelope extensions (so a plugin sees SIZE/BODY/SMTPUTF8 decided) and last for TLS policies
 * and message builders (so a plugin may replace them by name or match first).
 */
import type {
  Authenticator, DataStage, EnvelopeExtension, GreetingStage, MessageBuilder, Plugin, SessionHooks,
  TlsPolicy, TransportStage,
} from '../plugin.js';
import { builtinEnvelopeExtensions } from './envelope.js';
import { smtpGreeting } from './greeting.js';
import { builtinTlsPolicies } from './tls-policy.js';
import { socketTransport } from './transport.js';

export interface SessionStages {
  readonly transport: TransportStage;
  readonly greeting: GreetingStage;
  readonly data: DataStage;
  readonly authenticators: readonly Authenticator[];
  readonly tlsPolicies: ReadonlyMap<string, TlsPolicy>;
  readonly envelopeExtensions: readonly EnvelopeExtension[];
  readonly messageBuilders: readonly MessageBuilder[];
  readonly hooks: readonly SessionHooks[];
  readonly plugins: readonly Plugin[];
}

const smtpData: DataStage = { name: 'smtp', repliesPerRecipient: false };

export function resolveStages(plugins: readonly Plugin[], builtinBuilders: readonly MessageBuilder[] = []): SessionStages {
  let transport = socketTransport;
  let greeting = smtpGreeting;
  let data = smtpData;
  const authenticators: Authenticator[] = [];
  const extensions: EnvelopeExtension[] = [...builtinEnvelopeExtensions];
  const policies = new Map<string, TlsPolicy>();
  const builders: MessageBuilder[] = [];
  const hooks: SessionHooks[] = [];
  for (const p of plugins) {
    if (!p || typeof p.name !== 'string') throw new TypeError('plugins: every plugin must be an object with a name');
    if (p.transport) transport = p.transport;
    if (p.greeting) greeting = p.greeting;
    if (p.data) data = p.data;
    if (p.authenticators) authenticators.push(...p.authenticators);
    if (p.envelopeExtensions) {
      for (const e of p.envelopeExtensions) {
        // Same name replaces (a plugin may redefine a built-in extension).
        const i = extensions.findIndex((x) => x.name === e.name);
        if (i === -1) extensions.push(e); else extensions[i] = e;
      }
    }
    for (const t of p.tlsPolicies ?? []) policies.set(t.name, t);
    if (p.messageBuilders) builders.push(...p.messageBuilders);
    if (p.hooks) hooks.push(p.hooks);
  }
  for (const t of builtinTlsPolicies) if (!policies.has(t.name)) policies.set(t.name, t);
  return {
    transport, greeting, data, authenticators, tlsPolicies: policies, envelopeExtensions: extensions,
    messageBuilders: [...builders, ...builtinBuilders], hooks, plugins,
  };
}
