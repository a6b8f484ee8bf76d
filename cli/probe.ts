/**
 * `mailstage probe`: a swaks-like look at a server without sending anything — greeting, EHLO/LHLO
 * keywords, the STARTTLS upgrade (protocol, cipher, certificate and whether it verifies), AUTH
 * mechanisms offered and which of them mailstage has an authenticator for, SIZE and the extensions
 * that change how mailstage sends (PIPELINING, CHUNKING, DSN, SMTPUTF8, 8BITMIME).
 *
 * The TLS handshake never rejects the certificate: a probe is for finding out, so verification is
 * reported (`verified: false` and why) instead of ending the session.
 */
import { printable } from '../core/printable.js';
import type * as tls from 'node:tls';
import { defaultPlugins, SmtpClient } from '../index.js';
import lmtp from '../plugins/lmtp/index.js';
import { CliInputError } from './common.js';

export interface ProbeTarget {
  readonly protocol: 'smtp' | 'smtps' | 'lmtp';
  readonly host: string;
  readonly port?: number;
  readonly label: string;
}

export function parseProbeTarget(input: string, options: { readonly lmtp?: boolean } = {}): ProbeTarget {
  if (input.startsWith('/')) return { protocol: options.lmtp ? 'lmtp' : 'smtp', host: input, label: input };
  const m = /^(smtp|smtps|lmtp):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d{1,5}))?\/?$/.exec(input);
  if (!m) throw new CliInputError(`cannot probe ${JSON.stringify(input)}: expected smtp://host:port, smtps://host:port, lmtp://host:port or /path/to/socket`);
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && (port < 1 || port > 65535)) throw new CliInputError(`bad port in ${input}`);
  const host = m[2]!.startsWith('[') ? m[2]!.slice(1, -1) : m[2]!;
  return { protocol: m[1] as ProbeTarget['protocol'], host, ...(port === undefined ? {} : { port }), label: input };
}

export interface CertificateInfo {
  readonly subject: string;
  readonly issuer: string;
  readonly validFrom: string;
  readonly validTo: string;
  readonly expiresInDays: number;
  readonly altNames?: string;
  readonly verified: boolean;
  readonly verifyError?: string;
}

export interface TlsInfo {
  /** 'implicit' for smtps; 'ok' after STARTTLS; 'failed' with `error`; 'not offered'. */
  readonly result: 'implicit' | 'ok' | 'failed' | 'not offered' | 'skipped';
  readonly protocol?: string;
  readonly cipher?: string;
  readonly certificate?: CertificateInfo;
  readonly error?: string;
}

export interface ProbeReport {
  readonly target: string;
  readonly protocol: ProbeTarget['protocol'];
  readonly greeting: { readonly code: number; readonly text: string };
  /** Keywords before STARTTLS (what a passive attacker sees). */
  readonly ehlo: Readonly<Record<string, string>>;
  readonly tls: TlsInfo;
  /** Keywords after STARTTLS (absent when there was no upgrade). */
  readonly ehloAfterTls?: Readonly<Record<string, string>>;
  readonly auth: { readonly offered: readonly string[]; readonly usable: readonly string[] };
  /** SIZE limit in octets: null when not advertised, 0 when advertised without a limit. */
  readonly size: number | null;
  readonly extensions: {
    readonly pipelining: boolean; readonly chunking: boolean; readonly dsn: boolean; readonly smtputf8: boolean;
    readonly '8bitmime': boolean; readonly enhancedstatuscodes: boolean; readonly requiretls: boolean;
  };
}

export async function probe(target: ProbeTarget, options: { readonly timeout?: number; readonly starttls?: boolean; readonly localHostname?: string; readonly debug?: boolean } = {}): Promise<ProbeReport> {
  const implicit = target.protocol === 'smtps';
  const timeout = options.timeout ?? 10_000;
  const client = new SmtpClient({
    host: target.host,
    ...(target.port === undefined ? {} : { port: target.port }),
    tls: implicit ? 'implicit' : 'none',
    tlsOptions: { rejectUnauthorized: false },
    timeouts: { connect: timeout, greeting: timeout, command: timeout },
    plugins: target.protocol === 'lmtp' ? [...defaultPlugins(), lmtp()] : defaultPlugins(),
    ...(options.localHostname ? { localHostname: options.localHostname } : {}),
    ...(options.debug ? { debug: 1 as const } : {}),
  });
  try {
    const greeting = await client.connect();
    await client.ehloOrHeloIfNeeded();
    const before = Object.fromEntries(client.features);
    let tlsInfo: TlsInfo;
    let after: Record<string, string> | undefined;
    if (implicit) {
      tlsInfo = { result: 'implicit', ...describeTls(client.tlsSocket) };
    } else if (!client.hasExtension('starttls')) {
      tlsInfo = { result: 'not offered' };
    } else if (options.starttls === false) {
      tlsInfo = { result: 'skipped' };
    } else {
      try {
        await client.startTls({ rejectUnauthorized: false, servername: serverName(target.host) });
        await client.ehloOrHeloIfNeeded();
        after = Object.fromEntries(client.features);
        tlsInfo = { result: 'ok', ...describeTls(client.tlsSocket) };
      } catch (error) {
        tlsInfo = { result: 'failed', error: (error as Error).message };
      }
    }
    const features = client.features;
    const offered = (features.get('auth') ?? '').split(/\s+/).filter(Boolean).map((m) => m.toUpperCase());
    const installed = new Set(client.installedAuthenticators);
    const size = features.has('size') ? Number(features.get('size') || 0) : null;
    const report: ProbeReport = {
      target: target.label,
      protocol: target.protocol,
      greeting: { code: greeting.code, text: greeting.message },
      ehlo: before,
      tls: tlsInfo,
      ...(after ? { ehloAfterTls: after } : {}),
      auth: { offered, usable: offered.filter((m) => installed.has(m)) },
      size: Number.isNaN(size) ? 0 : size,
      extensions: {
        pipelining: features.has('pipelining'),
        chunking: features.has('chunking'),
        dsn: features.has('dsn'),
        smtputf8: features.has('smtputf8'),
        '8bitmime': features.has('8bitmime'),
        enhancedstatuscodes: features.has('enhancedstatuscodes'),
        requiretls: features.has('requiretls'),
      },
    };
    await client.quit().catch(() => undefined);
    return report;
  } finally {
    client.close();
  }
}

function serverName(host: string): string | undefined {
  return /^[\d.]+$/.test(host) || host.includes(':') || host.startsWith('/') ? undefined : host;
}

function describeTls(socket: tls.TLSSocket | undefined): Omit<TlsInfo, 'result'> {
  if (!socket) return {};
  const cipher = socket.getCipher();
  const cert = socket.getPeerCertificate();
  const hasCert = cert && Object.keys(cert).length > 0;
  const verifyError = socket.authorizationError ? String(socket.authorizationError) : undefined;
  return {
    protocol: socket.getProtocol() ?? undefined,
    cipher: cipher ? cipher.standardName || cipher.name : undefined,
    ...(hasCert
      ? {
          certificate: {
            subject: dn(cert.subject),
            issuer: dn(cert.issuer),
            validFrom: new Date(cert.valid_from).toISOString(),
            validTo: new Date(cert.valid_to).toISOString(),
            expiresInDays: Math.floor((new Date(cert.valid_to).getTime() - Date.now()) / 86_400_000),
            ...(cert.subjectaltname ? { altNames: cert.subjectaltname } : {}),
            verified: socket.authorized,
            ...(verifyError ? { verifyError } : {}),
          },
        }
      : {}),
  };
}

function dn(name: tls.Certificate | undefined): string {
  if (!name) return '';
  return Object.entries(name).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`).join(', ');
}

export function formatProbe(r: ProbeReport): string {
  const yes = (b: boolean): string => (b ? 'yes' : 'no');
  const keywords = (m: Readonly<Record<string, string>>): string =>
    Object.entries(m).map(([k, v]) => (v ? `${k.toUpperCase()} ${v}` : k.toUpperCase())).join(', ') || '(none: HELO only)';
  const lines = [
    `Probe ${r.target} (${r.protocol.toUpperCase()})`,
    `  greeting     ${r.greeting.code} ${r.greeting.text.replace(/\n/g, ' / ')}`,
    `  ${r.protocol === 'lmtp' ? 'LHLO' : 'EHLO'}         ${keywords(r.ehlo)}`,
  ];
  const t = r.tls;
  if (t.result === 'ok' || t.result === 'implicit') {
    lines.push(`  TLS          ${t.result === 'ok' ? 'STARTTLS ok' : 'implicit (smtps)'}: ${t.protocol ?? '?'}, ${t.cipher ?? '?'}`);
    if (t.certificate) {
      const c = t.certificate;
      lines.push(`  certificate  subject ${c.subject}`);
      lines.push(`               issuer  ${c.issuer}`);
      lines.push(`               expires ${c.validTo} (${c.expiresInDays < 0 ? `EXPIRED ${-c.expiresInDays} days ago` : `in ${c.expiresInDays} days`})`);
      lines.push(`               verified ${c.verified ? 'yes' : `no (${c.verifyError ?? 'unknown reason'})`}`);
    }
  } else if (t.result === 'failed') lines.push(`  TLS          STARTTLS failed: ${t.error}`);
  else lines.push(`  TLS          ${t.result === 'skipped' ? 'STARTTLS offered, not tried (--no-starttls)' : 'STARTTLS not offered: everything goes in the clear'}`);
  if (r.ehloAfterTls) lines.push(`  EHLO (TLS)   ${keywords(r.ehloAfterTls)}`);
  lines.push(`  AUTH         ${r.auth.offered.length > 0 ? `${r.auth.offered.join(' ')}; mailstage can use ${r.auth.usable.join(' ') || 'none of them'}` : 'not offered'}`);
  lines.push(`  SIZE         ${r.size === null ? 'not advertised' : r.size === 0 ? 'advertised, no limit' : `${r.size} octets (${(r.size / 1048576).toFixed(1)} MiB)`}`);
  const e = r.extensions;
  lines.push(`  PIPELINING ${yes(e.pipelining)} · CHUNKING ${yes(e.chunking)} · DSN ${yes(e.dsn)} · SMTPUTF8 ${yes(e.smtputf8)} · 8BITMIME ${yes(e['8bitmime'])} · ENHANCEDSTATUSCODES ${yes(e.enhancedstatuscodes)} · REQUIRETLS ${yes(e.requiretls)}`);
  // Every field above may come from the server (greeting, keywords, certificate names, errors).
  return lines.map((l) => printable(l)).join('\n');
}
