/**
 * Holding a body while its hash is computed: the DKIM-Signature field carries the body hash and goes
 * out before the body, so the body must be read to its end first and then sent. Small bodies stay in
 * memory; past a threshold the body goes to a temporary file that is unlinked right after it is
 * created, so nothing is left on disk on any path — an error, a consumer that gives up, a crash or
 * a SIGKILL: the kernel frees the space when the last descriptor closes, at the latest when the
 * process dies. The file is read back with positional reads from the same descriptor.
 */
import { randomUUID } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { LineEndNormaliser } from './canonicalize.js';
import { DkimSigningError, DkimSpoolError } from './errors.js';

export interface SpoolOptions {
  /** Bytes kept in memory; a larger body is spooled to a file. */
  readonly threshold: number;
  /** Where spool files are created (default `os.tmpdir()`). */
  readonly tmpDir: string;
}

/** A body read to its end, ready to be streamed once. */
export interface SpooledBody {
  readonly size: number;
  /** True when it went to a temporary file. */
  readonly onDisk: boolean;
  /** The body as a stream of Buffers; the spool file (if any) is closed when it ends or is destroyed. */
  stream(): Readable;
  /** Releases the spool without streaming it (signing failed after the body was read). */
  discard(): Promise<void>;
}

/** Writes go to the file in batches of about this size (fewer syscalls for small chunks). */
const WRITE_BATCH = 256 * 1024;

/**
 * Reads `source` to its end with CRLF-normalised line ends, hands every normalised chunk to `observe`
 * (the body hash) and keeps the bytes to send. NUL octets are refused: the data stage would send such
 * a body as BINARYMIME, octet for octet, and DKIM signs text (RFC 6376 §5.3: encode binary content
 * as base64 first).
 */
export async function spoolBody(source: AsyncIterable<unknown>, observe: (chunk: Buffer) => void, options: SpoolOptions): Promise<SpooledBody> {
  const normaliser = new LineEndNormaliser();
  let memory: Buffer[] = [];
  let memoryBytes = 0;
  let size = 0;
  let file: FileHandle | undefined;

  const keep = async (chunk: Buffer): Promise<void> => {
    if (chunk.length === 0) return;
    observe(chunk);
    size += chunk.length;
    memory.push(chunk);
    memoryBytes += chunk.length;
    if (file === undefined && size > options.threshold) file = await createSpoolFile(options.tmpDir);
    if (file !== undefined && memoryBytes >= WRITE_BATCH) await flush();
  };
  const flush = async (): Promise<void> => {
    const batch = memory.length === 1 ? memory[0]! : Buffer.concat(memory, memoryBytes);
    memory = [];
    memoryBytes = 0;
    try {
      await file!.write(batch);
    } catch (error) {
      throw new DkimSpoolError(`dkim: cannot spool the message body to ${options.tmpDir}: ${(error as Error).message}`, error);
    }
  };

  try {
    for await (const raw of source) {
      const chunk = toBuffer(raw);
      if (chunk.includes(0)) {
        throw new DkimSigningError('body', 'has NUL octets (binary content); DKIM signs text bodies: send binary data base64-encoded');
      }
      await keep(normaliser.push(chunk));
    }
    await keep(normaliser.end());
    if (file !== undefined && memoryBytes > 0) await flush();
  } catch (error) {
    await file?.close().catch(() => undefined);
    const destroy = (source as { destroy?: (e?: Error) => void }).destroy;
    if (typeof destroy === 'function') destroy.call(source);
    throw error;
  }

  if (file === undefined) return memoryBody(memory, size);
  return fileBody(file, size);
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new DkimSigningError('body', `expected a stream of Buffers or strings, got a chunk of type ${typeof chunk}`);
}

/** Created, then unlinked at once: from here on only this descriptor knows the file. */
async function createSpoolFile(dir: string): Promise<FileHandle> {
  const file = path.join(dir, `mailstage-dkim-${process.pid}-${randomUUID()}.tmp`);
  let handle: FileHandle;
  try {
    handle = await open(file, 'wx+', 0o600);
  } catch (error) {
    throw new DkimSpoolError(`dkim: cannot create a spool file in ${dir}: ${(error as Error).message}`, error);
  }
  try {
    await unlink(file);
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw new DkimSpoolError(`dkim: cannot unlink the spool file ${file}: ${(error as Error).message}`, error);
  }
  return handle;
}

function memoryBody(chunks: readonly Buffer[], size: number): SpooledBody {
  let used = false;
  return {
    size,
    onDisk: false,
    stream() {
      if (used) throw new Error('dkim: the signed body can be streamed once');
      used = true;
      return Readable.from(chunks, { objectMode: false });
    },
    async discard() {
      used = true;
    },
  };
}

function fileBody(handle: FileHandle, size: number): SpooledBody {
  let used = false;
  return {
    size,
    onDisk: true,
    stream() {
      if (used) throw new Error('dkim: the signed body can be streamed once');
      used = true;
      // autoClose: the descriptor (the file's last reference) closes on end, error or destroy.
      return handle.createReadStream({ start: 0, highWaterMark: 256 * 1024, autoClose: true });
    },
    async discard() {
      if (used) return;
      used = true;
      await handle.close();
    },
  };
}
