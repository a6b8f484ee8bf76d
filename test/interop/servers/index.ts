/**
 * Real mail servers on loopback for the interop suite. Each module exports `available()` (is it
 * installed and usable here — say "not installed" honestly with `describe.skipIf(!available())`)
 * and an async `startX(options)` returning a handle with `host`, port(s), read-back helpers and
 * `stop()`. Install the packages with `.ci/install-interop.sh`.
 */
export * as aiosmtpd from './aiosmtpd.js';
export * as certs from './certs.js';
export * as dovecot from './dovecot.js';
export * as maildir from './maildir.js';
export * as postfix from './postfix.js';
export * as smtpSink from './smtp-sink.js';
export { startAiosmtpd, type AiosmtpdMessage, type AiosmtpdOptions, type AiosmtpdServer } from './aiosmtpd.js';
export { serverCertificate, type ServerCertificate } from './certs.js';
export { startDovecot, type DovecotOptions, type DovecotServer, type DovecotUser } from './dovecot.js';
export { type DeliveredMessage } from './maildir.js';
export { startPostfix, type PostfixOptions, type PostfixServer } from './postfix.js';
export { startSmtpSink, type SmtpSinkCounts, type SmtpSinkOptions, type SmtpSinkServer } from './smtp-sink.js';
