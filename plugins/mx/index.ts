/**
 * Direct delivery: recipients grouped by domain, each domain's MX hosts (RFC 5321 §5.1) in
 * preference order, the domain itself as an implicit MX when it has none. The Mailer tries the
 * hosts in order. The resolver is injectable so tests point domains at local servers.
 */
import { promises as dns } from 'node:dns';
import {
  definePlugin, SmtpError, SmtpNotSupportedError, type Envelope, type Plugin, type Route, type RouteHost,
} from '../../api.js';

export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

/** The part of `dns.promises.Resolver` used; without resolve4/resolve6 the MX names are handed to
 *  the socket as they are (the system resolver looks them up). */
export interface MxResolver {
  resolveMx(domain: string): Promise<readonly MxRecord[]>;
  resolve4?(host: string): Promise<readonly string[]>;
  resolve6?(host: string): Promise<readonly string[]>;
}

export interface MxOptions {
  readonly resolver?: MxResolver;
  /** Default 25. */
  readonly port?: number;
}

// Answers that mean "no such records" rather than "DNS is failing now".
const NONE = new Set(['ENODATA', 'ENOTFOUND', 'NOTFOUND']);
const isNone = (err: unknown): boolean => NONE.has((err as { code?: string }).code ?? '');

export default function mx(options: MxOptions = {}): Plugin {
  const resolver = options.resolver ?? new dns.Resolver();
  const port = options.port ?? 25;

  const lookup = async (fn: ((h: string) => Promise<readonly string[]>) | undefined, name: string): Promise<readonly string[]> => {
    if (!fn) return [];
    try {
      return await fn.call(resolver, name);
    } catch (err) {
      if (isNone(err)) return [];
      throw err;
    }
  };

  /** An exchange's addresses (IPv4 first), each keeping the name for TLS. */
  const hostsOf = async (name: string): Promise<RouteHost[]> => {
    if (!resolver.resolve4 && !resolver.resolve6) return [{ host: name, port }];
    const addresses = [...await lookup(resolver.resolve4, name), ...await lookup(resolver.resolve6, name)];
    return addresses.map((host) => ({ host, port, servername: name }));
  };

  const routeDomain = async (domain: string, recipients: readonly string[]): Promise<Route> => {
    const fail = (error: Error): Route => ({ hosts: [], recipients, error });
    if (domain.startsWith('[') && domain.endsWith(']')) {
      return { hosts: [{ host: domain.slice(1, -1).replace(/^IPv6:/i, ''), port }], recipients };
    }
    try {
      let records: readonly MxRecord[] = [];
      try {
        records = await resolver.resolveMx(domain);
      } catch (err) {
        if (!isNone(err)) throw err;
      }
      if (records.length === 1 && (records[0]!.exchange === '' || records[0]!.exchange === '.')) {
        return fail(new SmtpNotSupportedError(`${domain} accepts no mail (null MX, RFC 7505)`, { stage: 'connect' }));
      }
      const names = records.length === 0 ? [domain] : [...records].sort((a, b) => a.priority - b.priority).map((r) => r.exchange);
      const hosts = (await Promise.all(names.map(hostsOf))).flat();
      if (hosts.length > 0) return { hosts, recipients };
      return fail(new SmtpError(`${domain} has no MX and no address`, { stage: 'connect', permanent: true }));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return fail(new SmtpError(`DNS lookup for ${domain} failed: ${message}`, { stage: 'connect', cause: err, permanent: false }));
    }
  };

  return definePlugin({
    name: 'mx',
    router: {
      name: 'mx',
      async route(envelope: Envelope): Promise<readonly Route[]> {
        const byDomain = new Map<string, string[]>();
        for (const rcpt of envelope.to) {
          const domain = rcpt.slice(rcpt.lastIndexOf('@') + 1).toLowerCase();
          byDomain.set(domain, [...(byDomain.get(domain) ?? []), rcpt]);
        }
        return Promise.all([...byDomain].map(([domain, rcpts]) => routeDomain(domain, rcpts)));
      },
    },
  });
}
