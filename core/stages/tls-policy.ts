/**
 * TLS policies, chosen by the `tls` option. A plugin may add its own (MTA-STS, DANE) through
 * `tlsPolicies`; core picks by name and knows no more than this interface.
 */
import type { TlsPolicy } from '../plugin.js';

export const builtinTlsPolicies: readonly TlsPolicy[] = [
  { name: 'none', decide: () => ({ action: 'plaintext' }) },
  {
    // Upgrade when offered. Not a defence against an active attacker who strips STARTTLS.
    name: 'opportunistic',
    decide: (ctx) => (ctx.features.has('starttls') ? { action: 'starttls' } : { action: 'plaintext' }),
  },
  {
    name: 'required',
    decide: (ctx) => ctx.features.has('starttls')
      ? { action: 'starttls' }
      : { action: 'refuse', reason: `${ctx.host} does not offer STARTTLS and tls is 'required' (stripped by an attacker, or the server has no TLS)` },
  },
  { name: 'implicit', implicit: true, decide: () => ({ action: 'plaintext' }) },
];
