/**
 * The dev sink's mailbox: a folder of `.eml` files (the truth) and an index of their summaries in
 * memory (rebuilt from the folder on start, so a restarted sink shows what it had).
 *
 * A message is received into a hidden `.incoming-*.partial` file as it streams in — never held
 * whole in memory — and only becomes `<id>.eml` (and appears in the index) once it is complete and
 * within the size limit. So a message over the limit, a client that disconnects mid-DATA, a full
 * disk or a crash leaves no `.eml` behind: at worst a `.partial` file, which the next start removes.
 *
 * Ids are the file names without `.eml`; they are only ever looked up in the index, never joined to
 * a path from outside, so a request cannot name a file the mailbox did not list itself.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { createWriteStream, promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { HEAD_LIMIT } from './headers.js';
import { summarize, type MessageSummary } from './summary.js';

/** What an id may look like: a plain file name stem (no separators, no leading dot). */
export const MESSAGE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const PARTIAL_PREFIX = '.incoming-';
const PARTIAL_SUFFIX = '.partial';
/** A `.partial` file older than this at start belongs to a sink that died mid-message. */
const STALE_PARTIAL_MS = 60_000;

export interface Envelope {
  readonly from: string;
  readonly to: readonly string[];
}

export interface IndexedMessage {
  readonly summary: MessageSummary;
  readonly file: string;
}

export type ReceiveResult =
  | { readonly kind: 'stored'; readonly message: IndexedMessage; readonly messageBytes: number; readonly head: Buffer }
  | { readonly kind: 'too-big'; readonly messageBytes: number; readonly limit: number };

/** smtp-server's data stream sets `sizeExceeded` once the message passes its SIZE. */
export type MessageSource = Readable & { readonly sizeExceeded?: boolean };

export interface SkippedFile {
  readonly file: string;
  readonly reason: string;
}

interface MailboxEvents {
  added: [MessageSummary];
  cleared: [number];
}

export class Mailbox extends EventEmitter<MailboxEvents> {
  private readonly index = new Map<string, IndexedMessage>();
  private sequence = 0;

  private constructor(
    readonly dir: string,
    /** `.eml` files found on start that could not be read or are not named as ids are. */
    readonly skipped: readonly SkippedFile[],
  ) {
    super();
  }

  /** Opens (creating it if missing) the folder and indexes the `.eml` files already in it. */
  static async open(dir: string): Promise<Mailbox> {
    const folder = path.resolve(dir);
    await fsp.mkdir(folder, { recursive: true });
    const names = await fsp.readdir(folder);
    await removeStalePartials(folder, names);
    const skipped: SkippedFile[] = [];
    const found: IndexedMessage[] = [];
    for (const name of names.filter((n) => n.endsWith('.eml')).sort()) {
      const file = path.join(folder, name);
      const id = name.slice(0, -'.eml'.length);
      if (!MESSAGE_ID.test(id)) {
        skipped.push({ file, reason: 'name is not a plain file name (letters, digits, . _ -)' });
        continue;
      }
      try {
        found.push({ file, summary: await summarizeFile(file, id) });
      } catch (error) {
        skipped.push({ file, reason: (error as Error).message });
      }
    }
    const mailbox = new Mailbox(folder, skipped);
    for (const message of found) mailbox.index.set(message.summary.id, message);
    return mailbox;
  }

  /** Newest first (ids begin with the time of arrival). */
  list(): MessageSummary[] {
    return [...this.index.values()].map((m) => m.summary).sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  }

  get size(): number {
    return this.index.size;
  }

  /** The message with this id, or undefined (also for anything that is not an id). */
  find(id: string): IndexedMessage | undefined {
    return MESSAGE_ID.test(id) ? this.index.get(id) : undefined;
  }

  /** Forgets a message whose file went away behind the mailbox's back. */
  forget(id: string): void {
    this.index.delete(id);
  }

  /**
   * Streams one message to disk: `trace` (the delivery headers) then the message. Stops writing
   * at once when the message passes `limit` bytes (or the source says its SIZE was exceeded) and
   * reads the rest away unstored. A write error (disk full) is thrown after the source has ended,
   * so the session can answer and go on.
   */
  async receive(source: MessageSource, trace: string, limit: number): Promise<ReceiveResult> {
    const temp = path.join(this.dir, `${PARTIAL_PREFIX}${randomUUID()}${PARTIAL_SUFFIX}`);
    const out = createWriteStream(temp, { flags: 'wx' });
    const head = new HeadCollector(HEAD_LIMIT);
    head.push(Buffer.from(trace));
    let messageBytes = 0;
    let oversized = false;
    let failure: Error | undefined;
    const abandon = (): void => {
      out.destroy();
      // The source may be paused waiting for a 'drain' that will now never come.
      source.resume();
    };
    out.on('error', (err) => {
      failure ??= err;
      abandon();
    });
    out.write(trace);
    source.on('data', (chunk: Buffer) => {
      messageBytes += chunk.length;
      if (oversized || failure) return;
      if (messageBytes > limit || source.sizeExceeded === true) {
        oversized = true;
        abandon();
        return;
      }
      head.push(chunk);
      if (!out.write(chunk)) {
        source.pause();
        out.once('drain', () => source.resume());
      }
    });
    try {
      await once(source, 'end');
    } catch (error) {
      failure ??= error as Error; // the client went away mid-message
      abandon();
    }
    if (!oversized && !failure) {
      try {
        await new Promise<void>((resolve, reject) => {
          out.once('error', reject);
          out.end(resolve);
        });
      } catch (error) {
        failure ??= error as Error;
      }
    }
    if (oversized || failure) {
      if (!out.closed) await once(out, 'close').catch(() => undefined);
      await fsp.rm(temp, { force: true });
      if (failure) throw failure;
      return { kind: 'too-big', messageBytes, limit };
    }
    const { id, file } = await this.publish(temp);
    // From here the message is stored: nothing below may fail the delivery (a client told 451
    // would send it again).
    const size = Buffer.byteLength(trace) + messageBytes;
    // The file's time, as a restart will read it back.
    const receivedAt = (await fsp.stat(file).catch(() => undefined))?.mtime ?? new Date();
    const summary = await summarize(head.bytes(), { id, size, receivedAt }).catch(() => fallbackSummary(id, size, receivedAt));
    const message = { summary, file };
    this.index.set(id, message);
    this.emit('added', summary);
    return { kind: 'stored', message, messageBytes, head: head.bytes() };
  }

  /** Deletes every indexed message; returns how many. */
  async clear(): Promise<number> {
    const messages = [...this.index.values()];
    for (const m of messages) {
      this.index.delete(m.summary.id);
      await fsp.rm(m.file, { force: true });
    }
    this.emit('cleared', messages.length);
    return messages.length;
  }

  /** Gives the finished temp file its final name, never overwriting another message. */
  private async publish(temp: string): Promise<{ id: string; file: string }> {
    for (let attempt = 0; ; attempt++) {
      const id = `${timestamp(new Date())}-${String(++this.sequence).padStart(6, '0')}`;
      const file = path.join(this.dir, `${id}.eml`);
      try {
        // link() fails on an existing name where rename() would replace it.
        await fsp.link(temp, file);
        await fsp.rm(temp, { force: true });
        return { id, file };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' && attempt < 1000) continue;
        if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOSYS') {
          // A file system without hard links: rename, having checked the name is free.
          if (await exists(file)) continue;
          await fsp.rename(temp, file);
          return { id, file };
        }
        throw error;
      }
    }
  }
}

/** The first bytes of a stream, up to a limit, without holding more. */
class HeadCollector {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    if (this.length >= this.limit) return;
    const part = chunk.subarray(0, this.limit - this.length);
    this.chunks.push(part);
    this.length += part.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

/** What the list shows for a message whose headers could not be read at all. */
function fallbackSummary(id: string, size: number, receivedAt: Date): MessageSummary {
  return { id, from: '', to: [], subject: '', date: receivedAt.toISOString(), size };
}

async function summarizeFile(file: string, id: string): Promise<MessageSummary> {
  const handle = await fsp.open(file, 'r');
  try {
    const stat = await handle.stat();
    const buffer = Buffer.alloc(Math.min(HEAD_LIMIT, stat.size));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return await summarize(buffer.subarray(0, bytesRead), { id, size: stat.size, receivedAt: stat.mtime });
  } finally {
    await handle.close();
  }
}

async function removeStalePartials(dir: string, names: readonly string[]): Promise<void> {
  for (const name of names) {
    if (!name.startsWith(PARTIAL_PREFIX) || !name.endsWith(PARTIAL_SUFFIX)) continue;
    const file = path.join(dir, name);
    const stat = await fsp.stat(file).catch(() => undefined);
    if (stat && Date.now() - stat.mtimeMs > STALE_PARTIAL_MS) await fsp.rm(file, { force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  return fsp.access(file).then(() => true, () => false);
}

/** `20261204T203200.123`: sorts in time order, safe in a file name. */
function timestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace('Z', '');
}
