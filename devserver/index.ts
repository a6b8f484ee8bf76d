/** The embedded dev sink and its certificate. */
export { startDevServer, type DevServer, type DevServerOptions, type StoredMessage } from './sink.js';
export { localhostCertificate, type TestCertificate } from './cert.js';
