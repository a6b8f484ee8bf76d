/**
 * The debug transcript: smtplib's set_debuglevel (1: lines, 2: lines with timestamps) or a callback
 * receiving structured events. Costs one boolean test per line when off. Secrets never reach it:
 * the session marks AUTH exchanges as secret and the transcript prints `<redacted>` for them, and
 * any registered secret string that a server echoes back is scrubbed from server lines too.
 */
export type DebugLevel = 0 | 1 | 2;

export interface TranscriptEvent {
  readonly direction: 'client' | 'server' | 'info';
  readonly text: string;
  readonly time: Date;
}

export type DebugSink = (event: TranscriptEvent) => void;
export type DebugOption = DebugLevel | boolean | DebugSink;

export interface Transcript {
  readonly enabled: boolean;
  client(text: string): void;
  server(text: string): void;
  info(text: string): void;
  /** Strings to scrub from every later line (passwords, encoded AUTH payloads). */
  addSecret(secret: string): void;
  scrub(text: string): string;
}

export function createTranscript(debug: DebugOption | undefined, write: (line: string) => void = defaultWrite): Transcript {
  const secrets = new Set<string>();
  const scrub = (text: string): string => {
    let out = text;
    for (const s of secrets) if (s && out.includes(s)) out = out.split(s).join('<redacted>');
    return out;
  };
  if (!debug) {
    return { enabled: false, client() {}, server() {}, info() {}, addSecret: (s) => { if (s.length >= 3) secrets.add(s); }, scrub };
  }
  const emit: (e: TranscriptEvent) => void = typeof debug === 'function'
    ? debug
    : debug === 2
      ? (e) => write(`${e.time.toISOString()} ${prefix(e.direction)}${e.text}`)
      : (e) => write(`${prefix(e.direction)}${e.text}`);
  const event = (direction: TranscriptEvent['direction'], text: string) =>
    emit({ direction, text: scrub(text), time: new Date() });
  return {
    enabled: true,
    client: (t) => event('client', t),
    server: (t) => event('server', t),
    info: (t) => event('info', t),
    addSecret: (s) => { if (s.length >= 3) secrets.add(s); },
    scrub,
  };
}

function prefix(direction: TranscriptEvent['direction']): string {
  return direction === 'client' ? 'C: ' : direction === 'server' ? 'S: ' : '*  ';
}

function defaultWrite(line: string): void {
  process.stderr.write(`${line}\n`);
}
