/**
 * A hand-driven SMTP client for tests that must control every byte (a DATA bigger than the
 * server's SIZE, sent without announcing it): write a line, read one complete reply.
 */
import net from 'node:net';

export interface SmtpTalk {
  /** The next complete reply (all its lines), e.g. `250-a\r\n250 b\r\n`. */
  reply(): Promise<string>;
  /** Writes `line` + CRLF and reads the reply. */
  command(line: string): Promise<string>;
  /** Writes bytes, waiting for the socket to drain (no reply read). */
  write(bytes: Buffer | string): Promise<void>;
  close(): void;
}

export async function smtpTalk(port: number, host = '127.0.0.1'): Promise<SmtpTalk> {
  const socket = net.connect(port, host);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffer = '';
  const waiting: Array<() => void> = [];
  socket.on('data', (d: Buffer) => {
    buffer += d.toString('latin1');
    waiting.splice(0).forEach((w) => w());
  });
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));

  async function reply(): Promise<string> {
    for (;;) {
      // A reply ends with a line whose code is followed by a space (or nothing).
      const m = /(?:^|\r\n)\d{3}(?: [^\r\n]*)?\r\n/.exec(buffer);
      if (m) {
        const end = m.index + m[0].length;
        const out = buffer.slice(0, end);
        buffer = buffer.slice(end);
        return out;
      }
      const more = new Promise<void>((resolve) => waiting.push(resolve));
      if ((await Promise.race([more.then(() => 'data'), ended.then(() => 'closed')])) === 'closed' && !/\r\n$/.test(buffer)) {
        throw new Error(`connection closed; unparsed: ${JSON.stringify(buffer)}`);
      }
    }
  }

  function write(bytes: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => {
      socket.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  return {
    reply,
    async command(line) {
      await write(`${line}\r\n`);
      return reply();
    },
    write,
    close: () => socket.destroy(),
  };
}
