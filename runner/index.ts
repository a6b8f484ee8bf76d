/** The batch runner: config-driven templated mailings, journaled and resumable. */
export { runBatch, type BatchOptions, type BatchResult } from './batch.js';
export { BatchInputError } from './errors.js';
export { readRows, estimateRows, type Row, type SourceSpec } from './source.js';
export { createRenderer, messageIdFor, RowError, type RenderedRow, type Renderer } from './render.js';
export { mailerSender, terminatorSentReplyLost, type Sender, type SendInfo, type MailerLike } from './sender.js';
export { readJournal, loadRunState, findInterruptedRun, type JournalRecord, type RowRecord, type RunHeader } from './journal.js';
export { formatSummary, type Summary, type Totals, type ReportRow } from './report.js';
