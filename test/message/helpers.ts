import { Readable } from 'node:stream';
import type { MessageBody } from '../../core/message/types.js';

export async function bytesOf(body: MessageBody): Promise<Buffer> {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (Buffer.isBuffer(body)) return body;
  if (body instanceof Uint8Array) return Buffer.from(body);
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Buffer | string | Uint8Array>) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** Problems with line structure: bare CR or LF, lines over 998 octets, no final CRLF. */
export function lineProblems(message: Buffer): string[] {
  const text = message.toString('latin1');
  const problems: string[] = [];
  if (/\r(?!\n)/.test(text)) problems.push('bare CR');
  if (/(?<!\r)\n/.test(text)) problems.push('bare LF');
  if (!text.endsWith('\r\n')) problems.push('no final CRLF');
  text.split('\r\n').forEach((line, i) => {
    if (line.length > 998) problems.push(`line ${i + 1} has ${line.length} octets`);
  });
  return problems;
}

export function headerSection(message: Buffer): string {
  const text = message.toString('utf8');
  return text.slice(0, text.indexOf('\r\n\r\n'));
}

export function readableOf(data: Buffer, chunk = 1000): Readable {
  return Readable.from((function* () {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  })());
}
