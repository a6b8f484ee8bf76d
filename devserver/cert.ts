/**
 * A self-signed certificate for loopback servers (the dev sink, tests): smtp-server's built-in one
 * expired in 2025. EC P-256 keeps generation fast; the result is cached per process.
 */
import { generate } from 'selfsigned';

export interface TestCertificate {
  readonly key: string;
  readonly cert: string;
  /** The certificate itself, to pass as `ca` so verification succeeds against it. */
  readonly ca: string;
  /** A client certificate signed by the same key pair (for mutual-TLS tests). */
  readonly clientKey?: string;
  readonly clientCert?: string;
}

let cached: Promise<TestCertificate> | undefined;

export function localhostCertificate(): Promise<TestCertificate> {
  cached ??= (async () => {
    const result = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      notBeforeDate: new Date(Date.now() - 60_000),
      notAfterDate: new Date(Date.now() + 365 * 24 * 3600_000),
      extensions: [
        { name: 'basicConstraints', cA: true },
        { name: 'keyUsage', digitalSignature: true, keyCertSign: true },
        { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
        { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
      ],
      clientCertificate: { cn: 'mailstage-client', keyType: 'ec', curve: 'P-256' },
    });
    return { key: result.private, cert: result.cert, ca: result.cert, clientKey: result.clientprivate, clientCert: result.clientcert };
  })();
  return cached;
}
