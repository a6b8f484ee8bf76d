/**
 * A self-signed certificate for 127.0.0.1/localhost made with the openssl CLI. Generated once per
 * process (EC P-256: milliseconds) and kept in memory; each server writes the PEM files into its
 * own temp folder (`writeCertificateFiles`), so nothing outlives the server's stop() — a shared
 * folder removed "on exit" leaked under vitest, whose workers end by SIGTERM.
 */
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isExecutable, makeTempDir, run } from './common.js';

export interface ServerCertificate {
  /** PEM certificate (servers). */
  readonly cert: string;
  /** PEM private key (servers). */
  readonly key: string;
  /** The certificate itself: pass as `ca` so a verifying client accepts it. */
  readonly ca: string;
  /** The DNS name in its subjectAltName (it also holds IP 127.0.0.1 and ::1). */
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

/** Writes cert.pem and key.pem (0600) into `dir` for a server's config. */
export async function writeCertificateFiles(certificate: Pick<ServerCertificate, 'cert' | 'key'>, dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  await writeFile(certFile, certificate.cert);
  // Readable by root only: Postfix smtpd loads it before dropping privileges, aiosmtpd runs as root.
  await writeFile(keyFile, certificate.key, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  return { certFile, keyFile };
}

async function generate(): Promise<ServerCertificate> {
  if (!opensslAvailable()) throw new Error(`${OPENSSL} not installed (run .ci/install-interop.sh)`);
  const dir = await makeTempDir('cert');
  try {
    const certFile = path.join(dir, 'cert.pem');
    const keyFile = path.join(dir, 'key.pem');
    run(OPENSSL, [
      'req', '-x509', '-nodes',
      '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-days', '7',
      '-subj', '/CN=localhost',
      // Node checks IP SANs for `host: '127.0.0.1'` and DNS SANs for `servername: 'localhost'`.
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1',
      // CA:TRUE so the same certificate can be the trust anchor passed as `ca`.
      '-addext', 'basicConstraints=critical,CA:TRUE',
      '-addext', 'keyUsage=digitalSignature,keyCertSign',
      '-addext', 'extendedKeyUsage=serverAuth',
      '-keyout', keyFile, '-out', certFile,
    ]);
    const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    return { cert, key, ca: cert, servername: 'localhost' };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
