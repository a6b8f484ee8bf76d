/**
 * AUTH CRAM-MD5 (RFC 2195): answers the server's challenge with `user hex(HMAC-MD5(password,
 * challenge))`. The password never crosses the wire, so plaintext connections are allowed.
 */
import { createHmac } from 'node:crypto';
import { definePlugin, type Authenticator, type Plugin } from '../../api.js';

export default function authCramMd5(): Plugin {
  const authenticator: Authenticator = {
    mechanism: 'CRAM-MD5',
    start: () => undefined,
    next: (challenge, { credentials }) => {
      if (challenge === '') throw new Error('CRAM-MD5 needs a challenge and the server sent none');
      const digest = createHmac('md5', credentials.pass ?? '').update(challenge, 'utf8').digest('hex');
      return `${credentials.user ?? ''} ${digest}`;
    },
  };
  return definePlugin({ name: 'auth-cram-md5', authenticators: [authenticator] });
}
