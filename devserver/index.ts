/** The embedded dev sink, its web inbox and its certificate. */
export {
  DEFAULT_SIZE_LIMIT, startDevServer, type DevServer, type DevServerOptions, type RefusedMessage, type StoredMessage,
} from './sink.js';
export { Mailbox, type IndexedMessage, type SkippedFile } from './mailbox.js';
export type { MessageSummary } from './summary.js';
export type { MessageDetail, AttachmentInfo } from './detail.js';
export { startInbox, type InboxOptions, type InboxServer } from './web.js';
export { localhostCertificate, type TestCertificate } from './cert.js';
