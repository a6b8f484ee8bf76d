/**
 * LMTP (RFC 2033): LHLO instead of EHLO with no HELO fallback, port 24 by default (or a unix
 * socket path as the host), and after the body one reply per accepted recipient, each recipient
 * reported with its own outcome.
 */
import { definePlugin, type Plugin } from '../../api.js';

export default function lmtp(): Plugin {
  return definePlugin({
    name: 'lmtp',
    greeting: { name: 'lmtp', verb: 'LHLO', fallbackToHelo: false, defaultPort: 24 },
    data: { name: 'lmtp', repliesPerRecipient: true },
  });
}
