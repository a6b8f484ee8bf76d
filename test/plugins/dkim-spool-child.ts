/**
 * Child process for the crash test in dkim.test.ts: signs a body that stops arriving after 1 MiB
 * (so the spool file exists and stays open), says "spooling", and waits to be killed.
 */
import { generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import dkim from '../../plugins/dkim/index.js';

const tmpDir = process.argv[2]!;
const { privateKey } = generateKeyPairSync('ed25519');
const plugin = dkim({
  keys: [{ domain: 'example.com', selector: 's', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }],
  spoolThreshold: 1024,
  tmpDir,
});
let sent = 0;
const body = new Readable({
  read() {
    if (sent < 1024 * 1024) {
      sent += 64 * 1024;
      this.push(Buffer.alloc(64 * 1024, 'a'));
    } else if (sent === 1024 * 1024) {
      sent++;
      // Give the signer a moment to write what it has, then report; never end the body.
      setTimeout(() => process.stdout.write('spooling\n'), 200);
    }
  },
});
void plugin.transforms[0]!.built!({ headers: ['From: a@example.com'], body }, { envelope: { from: 'a@example.com', to: ['b@example.org'] } });
setInterval(() => undefined, 60_000);
