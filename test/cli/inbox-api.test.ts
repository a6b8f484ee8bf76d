/**
 * The web inbox's JSON API and its defences, against the real sink: messages go in over SMTP with
 * the real client, come out over HTTP with node:http (so every header of the request is ours to
 * choose, Host included). The browser side (rendering, sandbox, live list) is in
 * test/interop/inbox.test.ts.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SmtpClient } from '../../index.js';
import { startDevServer, type DevServer } from '../../devserver/sink.js';
import { tempDir } from '../runner/helpers.js';

interface HttpResult {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
}

function request(url: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, headers: res.headers, body, text: body.toString('utf8') });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const json = async (url: string): Promise<unknown> => JSON.parse((await request(url)).text);

let sinks: DevServer[] = [];
afterEach(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  sinks = [];
});

async function sink(dir: string): Promise<DevServer & { inboxUrl: string }> {
  const s = await startDevServer({ dir, web: { port: 0 } });
  sinks.push(s);
  return s as DevServer & { inboxUrl: string };
}

async function deliver(s: DevServer, from: string, to: string[], message: string): Promise<void> {
  const client = new SmtpClient({ host: s.host, port: s.port, tls: 'none' });
  await client.connect();
  await client.sendmail(from, to, message);
  await client.quit();
}

const CRLF = (lines: string[]): string => lines.join('\r\n');

const WITH_ATTACHMENTS = CRLF([
  'From: =?UTF-8?Q?J=C3=BCrgen?= <juergen@example.test>',
  'To: "Bob, the builder" <bob@example.test>, carol@example.test',
  'Cc: dave@example.test',
  'Subject: =?UTF-8?B?SGVsbG8g8J+Ukw==?= report',
  'Date: Tue, 01 Dec 2026 09:30:00 +0100',
  'Message-ID: <m1@example.test>',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="outer"',
  '',
  '--outer',
  'Content-Type: multipart/alternative; boundary="alt"',
  '',
  '--alt',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Plain words.',
  '--alt',
  'Content-Type: text/html; charset=utf-8',
  '',
  '<p>HTML <b>words</b> <img src="cid:logo@x"></p>',
  '--alt--',
  '--outer',
  'Content-Type: image/png',
  'Content-ID: <logo@x>',
  'Content-Disposition: inline; filename="logo.png"',
  'Content-Transfer-Encoding: base64',
  '',
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
  '--outer',
  'Content-Type: text/html; name="evil.html"',
  'Content-Disposition: attachment; filename="..\\\\..\\\\win\\"dows\u202Egnp.html"',
  '',
  '<script>alert(document.domain)</script>',
  '--outer',
  'Content-Type: text/csv',
  'Content-Disposition: attachment; filename*=UTF-8\'\'r%C3%A9sum%C3%A9%20%2B%20notes.csv',
  '',
  'a,b',
  '1,2',
  '--outer--',
  '',
]);

describe('the inbox JSON API', () => {
  it('lists a message and shows it exactly as the contract says', async () => {
    const dir = tempDir('mailstage-inbox-');
    const s = await sink(dir);
    await deliver(s, 'juergen@example.test', ['bob@example.test', 'carol@example.test', 'hidden@example.test'], WITH_ATTACHMENTS);

    const list = (await json(`${s.inboxUrl}api/messages`)) as { id: string; size: number }[];
    const [file] = readdirSync(dir);
    const stored = readFileSync(path.join(dir, file!));
    expect(list).toEqual([{
      id: file!.replace(/\.eml$/, ''),
      from: 'Jürgen <juergen@example.test>',
      to: ['Bob, the builder <bob@example.test>', 'carol@example.test'],
      subject: 'Hello 🔓 report',
      date: '2026-12-01T08:30:00.000Z',
      size: stored.length,
    }]);
    const id = list[0]!.id;

    const detail = (await json(`${s.inboxUrl}api/messages/${id}`)) as Record<string, unknown>;
    expect(Object.keys(detail)).toEqual(['id', 'from', 'to', 'subject', 'date', 'text', 'html', 'headers', 'attachments']);
    expect(detail).toMatchObject({ id, from: 'Jürgen <juergen@example.test>', subject: 'Hello 🔓 report', date: '2026-12-01T08:30:00.000Z' });
    expect(detail.text).toBe('Plain words.');
    expect(detail.html).toBe('<p>HTML <b>words</b> <img src="cid:logo@x"></p>');
    // The delivery headers the sink added come first, one Delivered-To per envelope recipient.
    expect((detail.headers as { name: string; value: string }[]).slice(0, 7)).toEqual([
      { name: 'Return-Path', value: '<juergen@example.test>' },
      { name: 'Delivered-To', value: 'bob@example.test' },
      { name: 'Delivered-To', value: 'carol@example.test' },
      { name: 'Delivered-To', value: 'hidden@example.test' },
      { name: 'From', value: 'Jürgen <juergen@example.test>' },
      { name: 'To', value: '"Bob, the builder" <bob@example.test>, carol@example.test' },
      { name: 'Cc', value: 'dave@example.test' },
    ]);
    expect(detail.attachments).toEqual([
      { filename: 'logo.png', contentType: 'image/png', size: 70 },
      { filename: '..\\..\\win"dows\u202Egnp.html', contentType: 'text/html', size: 39 },
      { filename: 'résumé + notes.csv', contentType: 'text/csv', size: 8 },
    ]);

    // Raw: the stored bytes, as plain text that is never rendered.
    const raw = await request(`${s.inboxUrl}api/messages/${id}/raw`);
    expect(raw.status).toBe(200);
    expect(raw.body.equals(stored)).toBe(true);
    expect(raw.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(raw.headers['x-content-type-options']).toBe('nosniff');
    expect(raw.headers['content-security-policy']).toBe("default-src 'none'; frame-ancestors 'none'; sandbox");
  });

  it('downloads: attachment disposition, a harmless file name, the bytes decoded; inline only for images', async () => {
    const s = await sink(tempDir('mailstage-inbox-'));
    await deliver(s, 'a@example.test', ['b@example.test'], WITH_ATTACHMENTS);
    const [{ id }] = (await json(`${s.inboxUrl}api/messages`)) as { id: string }[];

    const evil = await request(`${s.inboxUrl}api/messages/${id}/attachments/1`);
    expect(evil.status).toBe(200);
    expect(evil.text).toBe('<script>alert(document.domain)</script>');
    expect(evil.headers['content-disposition']).toBe(`attachment; filename="win_dows_gnp.html"; filename*=UTF-8''win_dows_gnp.html`);
    expect(evil.headers['content-type']).toBe('text/html');
    expect(evil.headers['x-content-type-options']).toBe('nosniff');
    expect(evil.headers['content-security-policy']).toMatch(/sandbox/);

    const csv = await request(`${s.inboxUrl}api/messages/${id}/attachments/2`);
    expect(csv.text).toBe('a,b\r\n1,2');
    expect(csv.headers['content-disposition']).toBe(`attachment; filename="r_sum_ + notes.csv"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%2B%20notes.csv`);

    const logo = await request(`${s.inboxUrl}api/messages/${id}/inline/0`);
    expect(logo.status).toBe(200);
    expect(logo.headers['content-type']).toBe('image/png');
    expect(logo.body.subarray(1, 4).toString()).toBe('PNG');
    expect((await request(`${s.inboxUrl}api/messages/${id}/inline/1`)).status).toBe(415);
    expect((await request(`${s.inboxUrl}api/messages/${id}/attachments/3`)).status).toBe(404);
  });

  it('the framed HTML: cid: links point at the parts, and a policy that sandboxes it and blocks remote loads', async () => {
    const s = await sink(tempDir('mailstage-inbox-'));
    await deliver(s, 'a@example.test', ['b@example.test'], WITH_ATTACHMENTS);
    const [{ id }] = (await json(`${s.inboxUrl}api/messages`)) as { id: string }[];
    const page = await request(`${s.inboxUrl}api/messages/${id}/html`);
    expect(page.headers['content-security-policy']).toBe(
      "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; font-src data:; form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox",
    );
    expect(page.text).toBe(`<!DOCTYPE html><meta charset="utf-8"><meta name="referrer" content="no-referrer"><base target="_blank">\n<p>HTML <b>words</b> <img src="/api/messages/${id}/inline/0"></p>`);
  });

  it('newest first, and the index is rebuilt from the folder on start', async () => {
    const dir = tempDir('mailstage-inbox-');
    const first = await sink(dir);
    for (const n of [1, 2, 3]) await deliver(first, 'a@example.test', ['b@example.test'], `Subject: message ${n}\r\n\r\nbody ${n}\r\n`);
    const before = (await json(`${first.inboxUrl}api/messages`)) as { subject: string }[];
    expect(before.map((m) => m.subject)).toEqual(['message 3', 'message 2', 'message 1']);
    await first.close();
    sinks = [];
    // A file dropped in by hand with a name that is not an id is reported, not served.
    writeFileSync(path.join(dir, '.sneaky.eml'), 'Subject: hidden\r\n\r\nx\r\n');

    const second = await sink(dir);
    expect(second.skipped.map((f) => path.basename(f.file))).toEqual(['.sneaky.eml']);
    const after = (await json(`${second.inboxUrl}api/messages`)) as { id: string; subject: string }[];
    expect(after).toEqual(before);
    await deliver(second, 'a@example.test', ['b@example.test'], 'Subject: message 4\r\n\r\nbody 4\r\n');
    const now = (await json(`${second.inboxUrl}api/messages`)) as { subject: string }[];
    expect(now.map((m) => m.subject)).toEqual(['message 4', 'message 3', 'message 2', 'message 1']);
    expect(((await json(`${second.inboxUrl}api/messages/${after[2]!.id}`)) as { text: string }).text).toBe('body 1\n');
  });

  it('ids are looked up, never joined to a path', async () => {
    const dir = tempDir('mailstage-inbox-');
    const s = await sink(dir);
    await deliver(s, 'a@example.test', ['b@example.test'], 'Subject: x\r\n\r\ny\r\n');
    writeFileSync(path.join(path.dirname(dir), `${path.basename(dir)}-secret.eml`), 'Subject: secret\r\n\r\nsecret\r\n');
    for (const attempt of [
      '..%2F..%2F..%2F..%2Fetc%2Fpasswd', '%2e%2e', '..', `..%2F${path.basename(dir)}-secret`, '%00', 'a%2Fb',
      `${'x'.repeat(300)}`, '%E0%A4%A',
    ]) {
      const r = await request(`${s.inboxUrl}api/messages/${attempt}/raw`);
      expect([400, 404], attempt).toContain(r.status);
      expect(r.text, attempt).toMatch(/^\{"error":"(no message with this id|malformed URL|not found)"\}$/);
    }
    expect((await request(`${s.inboxUrl}api/messages/x/attachments/-1`)).status).toBe(404);
  });

  it('answers only to its own loopback name, and refuses a cross-site delete', async () => {
    const dir = tempDir('mailstage-inbox-');
    const s = await sink(dir);
    await deliver(s, 'a@example.test', ['b@example.test'], 'Subject: keep me\r\n\r\ny\r\n');
    const port = new URL(s.inboxUrl).port;
    // DNS rebinding: evil.example resolves to 127.0.0.1, the browser sends its own Host.
    const rebound = await request(`${s.inboxUrl}api/messages`, { headers: { Host: `evil.example:${port}` } });
    expect(rebound.status).toBe(421);
    expect(rebound.text).not.toMatch(/keep me/);
    expect((await request(`${s.inboxUrl}api/messages`, { headers: { Host: `localhost:${port}` } })).status).toBe(200);

    const crossSite = await request(`${s.inboxUrl}api/messages`, { method: 'DELETE', headers: { Origin: 'http://evil.example', 'Sec-Fetch-Site': 'cross-site' } });
    expect(crossSite.status).toBe(403);
    const otherPort = await request(`${s.inboxUrl}api/messages`, { method: 'DELETE', headers: { Origin: 'http://127.0.0.1:1' } });
    expect(otherPort.status).toBe(403);
    expect(readdirSync(dir)).toHaveLength(1);
    expect((await request(`${s.inboxUrl}api/messages`, { method: 'PUT' })).status).toBe(405);
  });

  it('DELETE /api/messages empties the folder; the event stream tells the page about arrivals and deletion', async () => {
    const dir = tempDir('mailstage-inbox-');
    const s = await sink(dir);
    const events: string[] = [];
    const controller = new AbortController();
    const stream = await fetch(`${s.inboxUrl}api/events`, { signal: controller.signal });
    expect(stream.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = stream.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    const nextEvent = async (): Promise<string> => {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (frame.startsWith('event:')) return frame;
          continue; // comments and retry:
        }
        const { value } = await reader.read();
        buffer += decoder.decode(value, { stream: true });
      }
    };

    await deliver(s, 'a@example.test', ['b@example.test'], 'Subject: live\r\n\r\nnow\r\n');
    events.push(await nextEvent());
    const [summary] = (await json(`${s.inboxUrl}api/messages`)) as unknown[];
    expect(events[0]).toBe(`event: message\ndata: ${JSON.stringify(summary)}`);

    const deleted = await request(`${s.inboxUrl}api/messages`, { method: 'DELETE', headers: { Origin: s.inboxUrl.replace(/\/$/, '') } });
    expect(deleted.status).toBe(200);
    expect(JSON.parse(deleted.text)).toEqual({ deleted: 1 });
    expect(await nextEvent()).toBe('event: cleared\ndata: {"deleted":1}');
    expect(readdirSync(dir)).toEqual([]);
    expect(await json(`${s.inboxUrl}api/messages`)).toEqual([]);
    controller.abort();
  });

  it('a message deleted behind its back is a 404, not a crash', async () => {
    const dir = tempDir('mailstage-inbox-');
    const s = await sink(dir);
    await deliver(s, 'a@example.test', ['b@example.test'], 'Subject: gone\r\n\r\ny\r\n');
    const [{ id }] = (await json(`${s.inboxUrl}api/messages`)) as { id: string }[];
    for (const f of readdirSync(dir)) (await import('node:fs')).rmSync(path.join(dir, f));
    const r = await request(`${s.inboxUrl}api/messages/${id}/raw`);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.text)).toEqual({ error: `message ${id} is gone from the folder` });
    expect(await json(`${s.inboxUrl}api/messages`)).toEqual([]);
  });
});
