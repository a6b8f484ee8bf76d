/**
 * The built-in transport: TCP, TLS from the first byte (implicit, port 465), or a unix socket.
 * A plugin's `transport` replaces it (a proxy, a test pipe) through the same interface.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { SmtpAbortError, SmtpConnectError, SmtpInvalidInputError, SmtpTimeoutError, syntheticReply } from '../errors.js';
import type { OpenedTransport, TransportStage, TransportTarget } from '../plugin.js';

export const socketTransport: TransportStage = {
  name: 'socket',
  open(target: TransportTarget): Promise<OpenedTransport> {
    return new Promise<OpenedTransport>((resolve, reject) => {
      if (target.signal?.aborted) {
        reject(new SmtpAbortError('aborted before connecting', { stage: 'connect' }));
        return;
      }
      const where = target.path ?? `${target.host}:${target.port}`;
      let socket: Duplex;
      const readyEvent = target.implicitTls && !target.path ? 'secureConnect' : 'connect';
      if (target.path) {
        socket = target.implicitTls
          ? tls.connect({ ...target.tlsOptions, path: target.path, servername: target.tlsOptions.servername })
          : net.connect({ path: target.path });
      } else if (target.implicitTls) {
        socket = tls.connect({
          ...target.tlsOptions,
          host: target.host,
          port: target.port,
          servername: target.tlsOptions.servername ?? serverName(target.host),
        });
      } else {
        socket = net.connect({ host: target.host, port: target.port });
      }
      const cleanup = () => {
        clearTimeout(timer);
        socket.off(readyEvent, onReady);
        socket.off('error', onError);
        target.signal?.removeEventListener('abort', onAbort);
      };
      const onReady = () => {
        cleanup();
        (socket as net.Socket).setNoDelay?.(true);
        resolve({ socket, secure: socket instanceof tls.TLSSocket });
      };
      const onError = (err: Error & { code?: string }) => {
        cleanup();
        socket.destroy();
        const msg = `cannot connect to ${where}: ${err.message}`;
        reject(new SmtpConnectError(syntheticReply(-1, msg), msg, { stage: 'connect', cause: err, permanent: isCertificateError(err) }));
      };
      const onAbort = () => {
        cleanup();
        socket.destroy();
        reject(new SmtpAbortError(`aborted while connecting to ${where}`, { stage: 'connect' }));
      };
      const timer = setTimeout(() => {
        cleanup();
        socket.destroy();
        reject(new SmtpTimeoutError(`connect to ${where} timed out after ${target.connectTimeout} ms`, target.connectTimeout, { stage: 'connect' }));
      }, target.connectTimeout);
      socket.once(readyEvent, onReady);
      socket.once('error', onError);
      target.signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};

/** SNI must not be an IP address (RFC 6066 §3). */
export function serverName(host: string): string | undefined {
  return net.isIP(host) ? undefined : host;
}

export interface Endpoint {
  readonly host: string;
  readonly port?: number;
  readonly path?: string;
}

/**
 * smtplib's connect(): 'host:port' (one colon only, so a bare IPv6 address stays a host),
 * '[v6]:port', or an absolute path for a unix socket. An explicit port argument wins.
 */
export function parseEndpoint(host: string, port?: number): Endpoint {
  if (typeof host !== 'string' || host.length === 0) throw new SmtpInvalidInputError('host', 'empty host');
  if (/[\x00-\x20\x7f]/.test(host)) throw new SmtpInvalidInputError('host', 'contains whitespace or a control character');
  if (host.startsWith('/')) return { host, path: host };
  let h = host;
  let p = port;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(host);
  if (bracket) {
    h = bracket[1]!;
    if (bracket[2] !== undefined && p === undefined) p = parsePort(bracket[2]);
  } else if (host.indexOf(':') !== -1 && host.indexOf(':') === host.lastIndexOf(':')) {
    const i = host.indexOf(':');
    h = host.slice(0, i);
    const portText = host.slice(i + 1);
    if (p === undefined) p = parsePort(portText);
  }
  if (p !== undefined && (!Number.isInteger(p) || p < 1 || p > 65535)) {
    throw new SmtpInvalidInputError('port', `${p} is not a port number (1-65535)`);
  }
  return { host: h, port: p };
}

function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new SmtpInvalidInputError('port', `nonnumeric port ${JSON.stringify(text)}`);
  return Number(text);
}

function isCertificateError(err: Error & { code?: string }): boolean {
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/.test(err.code ?? '');
}
