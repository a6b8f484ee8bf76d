/**
 * A self-signed certificate for 127.0.0.1/localhost made with the openssl CLI (the servers read PEM
 * files; clients pass `ca` to trust it). EC P-256 so generation takes milliseconds. One per process,
 * written into its own temp folder that the servers' unprivileged users can read.
 */
import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isExecutable, KEEP_TEMP, makeTempDir, run } from './common.js';

export interface ServerCertificate {
  /** PEM paths for server configs. */
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM contents. */
  readonly cert: string;
  readonly key: string;
  /** The certificate itself: pass as `ca` so a verifying client accepts it. */
  readonly ca: string;
  /** Names in the certificate's subjectAltName. */
  readonly servername: 'localhost';
}

export const OPENSSL = '/usr/bin/openssl';

export function opensslAvailable(): boolean {
  return isExecutable(OPENSSL);
}

let cached: Promise<ServerCertificate> | undefined;

export function serverCertificate(): Promise<ServerCertificate> {
  cached ??= generate();
  return cached;
}

async function generate(): Promise<ServerCertificate> {
  if (!opensslAvailable()) throw new Error(`${OPENSSL} not installed (run .ci/install-interop.sh)`);
  const dir = await makeTempDir('cert');
  // Shared by every server of this process, so it lives until the process exits.
  process.once('exit', () => {
    if (!KEEP_TEMP) rmSync(dir, { recursive: true, force: true });
  });
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  run(OPENSSL, [
    'req', '-x509', '-nodes',
    '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
    '-days', '7',
    '-subj', '/CN=localhost',
    // Node verifies IP SANs for `host: '127.0.0.1'` and DNS SANs for `servername: 'localhost'`.
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
    // CA:TRUE so the same certificate can be the trust anchor passed as `ca`.
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=digitalSignature,keyCertSign',
    '-addext', 'extendedKeyUsage=serverAuth',
    '-keyout', keyFile, '-out', certFile,
  ]);
  // openssl writes the key 0600 (root): Postfix smtpd reads it before dropping privileges and
  // aiosmtpd/dovecot run as root here, so that is fine; the cert is world-readable anyway.
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { certFile, keyFile, cert, key, ca: cert, servername: 'localhost' };
}
