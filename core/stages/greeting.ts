/**
 * The greeting stage: how a session introduces itself. SMTP sends EHLO and falls back to HELO;
 * the lmtp plugin swaps in LHLO with no fallback. Also the default name we introduce ourselves by.
 */
import * as os from 'node:os';
import * as net from 'node:net';
import type { GreetingStage } from '../plugin.js';

export const smtpGreeting: GreetingStage = { name: 'smtp', verb: 'EHLO', fallbackToHelo: true, defaultPort: 25 };

/**
 * smtplib: the host's FQDN, else the address literal of our end of the socket (RFC 5321 §4.1.4).
 * A name without a dot is not an FQDN and some servers refuse it.
 */
export function defaultLocalHostname(localAddress: string | undefined): string {
  const name = os.hostname();
  if (name.includes('.') && /^[A-Za-z0-9.-]+$/.test(name)) return name;
  if (!localAddress) return 'localhost.localdomain';
  const addr = localAddress.replace(/^::ffff:/, '');
  return net.isIPv6(addr) ? `[IPv6:${addr}]` : `[${addr}]`;
}
