/** The scale-out: batch runs on a BullMQ queue in Redis, sent by any number of workers. */
export { enqueueRun, jobOptions, type EnqueueOptions, type EnqueueResult } from './enqueue.js';
export { startWorker, type WorkerOptions, type RunningWorker } from './worker.js';
export { runStatus, formatStatus, type RunStatus, type StatusOptions, type StatusResult } from './status.js';
export { openRunStore, type RunStore, type RunMeta, type OutcomeRecord, type OutcomeCounts, type Doubt } from './state.js';
export { parseQueueUrl, QUEUE_NAME, type QueueTarget } from './connection.js';
export { jobIdFor, type SendJob } from './job.js';
