/**
 * The dev inbox in a real browser: Debian's Chromium, headless, driven by playwright-core.
 * `mailstage dev-server` runs as its own process (as a developer starts it); mail goes in over
 * SMTP with mailstage's client; the page is used as a person would (click, tabs, download,
 * delete). Hostile mail is the point: a script in a message must not run, and nothing a message
 * links to may be fetched — a local HTTP server counts every request it gets, and must get none.
 *
 * Screenshot for the README: MAILSTAGE_INBOX_SCREENSHOT=docs/inbox.png with this file.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Frame, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SmtpClient } from '../../index.js';
import { spawnCli } from '../cli/run.js';

const CHROMIUM = '/usr/bin/chromium';
const LAUNCH_FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

/** Every request a message tries to make lands here. */
interface HitCounter {
  readonly origin: string;
  readonly hits: string[];
  close(): Promise<void>;
}

async function startHitCounter(): Promise<HitCounter> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'Content-Type': 'image/gif' });
    res.end(Buffer.from('R0lGODlhAQABAAAAACwAAAAAAQABAAA=', 'base64'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

interface DevServerProcess {
  readonly child: ChildProcess;
  readonly smtpPort: number;
  readonly inbox: string;
  readonly dir: string;
}

async function startDevServerProcess(dir: string): Promise<DevServerProcess> {
  const child = spawnCli(['dev-server', '--port', '0', '--web-port', '0', '--dir', dir]);
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const [smtpPort, inbox] = await new Promise<[number, string]>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const smtp = /dev sink on smtp:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      const web = /^inbox: (http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(out);
      if (smtp && web) resolve([Number(smtp[1]), web[1]!]);
    });
    child.once('exit', (code) => reject(new Error(`dev-server exited ${code}: ${out}`)));
  });
  return { child, smtpPort, inbox, dir };
}

async function send(port: number, from: string, to: string, message: string): Promise<void> {
  const client = new SmtpClient({ host: '127.0.0.1', port, tls: 'none' });
  await client.connect();
  await client.sendmail(from, [to], message);
  await client.quit();
}

/** A newsletter that tries everything a mail client must not allow. */
function hostileNewsletter(hit: string): string {
  const html = `<!DOCTYPE html><html><head>
<meta http-equiv="refresh" content="0;url=${hit}/meta-refresh">
<link rel="stylesheet" href="${hit}/style.css">
<link rel="prefetch" href="${hit}/prefetch">
<style>@import url("${hit}/import.css"); .hero { background: url(${hit}/background.png); } @font-face { font-family: x; src: url(${hit}/font.woff); }</style>
<script src="${hit}/external.js"></script>
<script>document.title = 'SCRIPT RAN'; document.body && (document.body.innerHTML = 'SCRIPT RAN'); new Image().src = '${hit}/script-beacon';</script>
</head><body onload="document.body.innerHTML = 'ONLOAD RAN'">
<div class="hero" style="font-family: x"><h1 id="headline">Spring release notes</h1></div>
<p>Inline logo: <img id="logo" src="cid:logo@mailstage.test" alt="logo" width="40" height="40"></p>
<p>Tracking pixel: <img id="pixel" src="${hit}/pixel.gif" width="1" height="1"></p>
<img srcset="${hit}/srcset.png 2x" alt="">
<img src="x-broken:" onerror="this.src='${hit}/onerror'">
<video poster="${hit}/poster.png"></video>
<iframe src="${hit}/iframe"></iframe>
<object data="${hit}/object"></object>
<form action="${hit}/form"><input name="q" value="1"><button id="submit">go</button></form>
<a id="link" href="${hit}/clicked">Read more</a>
</body></html>`;
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
  return [
    'From: "Stagecoach News" <news@example.test>',
    'To: reader@example.test',
    'Subject: Spring release notes',
    'Date: Tue, 01 Dec 2026 09:30:00 +0000',
    'Message-ID: <news-1@example.test>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="mixed"',
    '',
    '--mixed',
    'Content-Type: multipart/related; boundary="related"',
    '',
    '--related',
    'Content-Type: multipart/alternative; boundary="alt"',
    '',
    '--alt',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Spring release notes, in plain text.',
    '--alt',
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: base64',
    '',
    ...Buffer.from(html).toString('base64').match(/.{1,76}/g)!,
    '--alt--',
    '--related',
    'Content-Type: image/png',
    'Content-ID: <logo@mailstage.test>',
    'Content-Disposition: inline; filename="logo.png"',
    'Content-Transfer-Encoding: base64',
    '',
    png,
    '--related--',
    '--mixed',
    'Content-Type: text/csv; charset=utf-8',
    'Content-Disposition: attachment; filename="report.csv"',
    '',
    'plan,users',
    'pro,42',
    '--mixed--',
    '',
  ].join('\r\n');
}

const chromiumAvailable = existsSync(CHROMIUM);

// On CI (which installs chromium, .ci/install-interop.sh) a missing browser is a failure, not a skip.
describe.skipIf(!chromiumAvailable && !process.env.CI)('the web inbox in Chromium', () => {
  let hit: HitCounter;
  let server: DevServerProcess;
  let context: BrowserContext;
  let page: Page;
  const profile = mkdtempSync(path.join(os.tmpdir(), 'mailstage-chromium-'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mailstage-inbox-'));

  beforeAll(async () => {
    hit = await startHitCounter();
    server = await startDevServerProcess(dir);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: LAUNCH_FLAGS, acceptDownloads: true, viewport: { width: 1280, height: 800 },
    });
    page = await context.newPage();
    // Two messages before the page opens; more arrive while it is open.
    await send(server.smtpPort, 'news@example.test', 'reader@example.test', hostileNewsletter(hit.origin));
    await send(server.smtpPort, 'mallory@example.test', 'reader@example.test',
      'From: <img src=x onerror=alert(1)>@example.test\r\nTo: reader@example.test\r\nSubject: <b>bold</b> <img src=x onerror="document.title=1">\r\n\r\nhi\r\n');
  });

  afterAll(async () => {
    await context?.close();
    server?.child.kill('SIGTERM');
    await hit?.close();
    rmSync(profile, { recursive: true, force: true });
  });

  it('lists the messages newest first, with message text shown as text', async () => {
    await page.goto(server.inbox);
    await expect.poll(() => page.locator('#list .item').count()).toBe(2);
    const subjects = await page.locator('#list .item .subject').allTextContents();
    expect(subjects).toEqual(['<b>bold</b> <img src=x onerror="document.title=1">', 'Spring release notes']);
    // Shown, not parsed: no element came out of a subject or an address.
    expect(await page.locator('#list img, #list b').count()).toBe(0);
    expect(await page.title()).toBe('mailstage inbox');
    expect(await page.locator('#live').textContent()).toBe('live');
  });

  it('opens a message: HTML in a sandboxed frame with the cid: image, no script run, nothing remote fetched', async () => {
    await page.locator('#list .item', { hasText: 'Spring release notes' }).click();
    await expect.poll(() => page.locator('#subject').textContent()).toBe('Spring release notes');
    expect(await page.locator('#from').textContent()).toBe('Stagecoach News <news@example.test>');
    const frameElement = page.locator('#html-frame');
    expect(await frameElement.getAttribute('sandbox')).toBe('allow-popups allow-popups-to-escape-sandbox');

    const frame = await messageFrame(page);
    await expect.poll(() => frame.locator('#headline').textContent().catch(() => null)).toBe('Spring release notes');
    // The inline image came from the message itself.
    await expect.poll(() => frame.locator('#logo').evaluate((img) => { const image = img as unknown as { complete: boolean; naturalWidth: number }; return image.complete && image.naturalWidth; })).toBe(1);
    // Neither the <script> nor onload ran: the body is the message's, the page title untouched.
    expect(await frame.locator('body').textContent()).not.toMatch(/SCRIPT RAN|ONLOAD RAN/);
    expect(await frame.title()).toBe('');
    expect(await page.title()).toBe('mailstage inbox');
    // A click on the form's button does not submit it anywhere.
    await frame.locator('#submit').click();
    // Give anything that was going to load the time to do it.
    await page.waitForTimeout(1500);
    expect(hit.hits).toEqual([]);
  });

  it('text, headers and raw source tabs', async () => {
    await page.locator('.tabs button[data-tab="text"]').click();
    expect(await page.locator('#text').textContent()).toBe('Spring release notes, in plain text.');
    await page.locator('.tabs button[data-tab="headers"]').click();
    const rows = await page.locator('#headers tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
    expect(rows).toContainEqual(['Subject', 'Spring release notes']);
    expect(rows[0]).toEqual(['Return-Path', '<news@example.test>']);
    await page.locator('.tabs button[data-tab="raw"]').click();
    await expect.poll(() => page.locator('#raw').textContent()).toMatch(/^Return-Path: <news@example\.test>\r?\nDelivered-To: reader@example\.test\r?\nFrom: "Stagecoach News"/);
    expect(await page.locator('#raw').textContent()).toBe(readFileSync(path.join(dir, readdirSync(dir).sort()[0]!), 'utf8'));
  });

  it('downloads an attachment with its name and bytes', async () => {
    const links = await page.locator('#attachments a').allTextContents();
    expect(links).toEqual(['logo.pngimage/png, 70 B', 'report.csvtext/csv, 18 B']);
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#attachments a', { hasText: 'report.csv' }).click()]);
    expect(download.suggestedFilename()).toBe('report.csv');
    const saved = path.join(profile, 'report.csv');
    await download.saveAs(saved);
    expect(readFileSync(saved, 'utf8')).toBe('plan,users\r\npro,42');
  });

  it('a new message appears without a reload', async () => {
    await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
    await send(server.smtpPort, 'dev@example.test', 'you@example.test', 'From: dev@example.test\r\nTo: you@example.test\r\nSubject: Arrived live\r\n\r\nhello\r\n');
    await expect.poll(() => page.locator('#list .item .subject').first().textContent()).toBe('Arrived live');
    expect(await page.locator('#list .item').count()).toBe(3);
    expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
    expect(await page.locator('#count').textContent()).toBe('3 messages');
  });

  it.runIf(process.env.MAILSTAGE_INBOX_SCREENSHOT)('screenshot for the README: the demo batch in the inbox', async () => {
    const demo = spawnCli(['demo', '--wait', '--web-port', '0']);
    let out = '';
    try {
      const inbox = await new Promise<string>((resolve, reject) => {
        demo.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /See them in the inbox: (\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        demo.once('exit', (code) => reject(new Error(`demo exited ${code}: ${out}`)));
      });
      const shot = await context.newPage();
      await shot.goto(inbox);
      await expect.poll(() => shot.locator('#list .item').count()).toBe(5);
      await shot.locator('#list .item', { hasText: 'Ada Lovelace' }).click();
      const frame = await messageFrame(shot);
      await expect.poll(() => frame.locator('body').textContent().catch(() => '')).toMatch(/Ada/);
      await shot.screenshot({ path: process.env.MAILSTAGE_INBOX_SCREENSHOT! });
      await shot.close();
    } finally {
      demo.kill('SIGINT');
    }
  });

  it('deletes everything', async () => {
    page.once('dialog', (dialog) => {
      expect(dialog.message()).toBe('Delete all 3 messages?');
      void dialog.accept();
    });
    await page.locator('#delete-all').click();
    await expect.poll(() => page.locator('#list .item').count()).toBe(0);
    expect(await page.locator('#empty').isVisible()).toBe(true);
    expect(await page.locator('#view').isVisible()).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
    expect(await (await fetch(`${server.inbox}api/messages`)).json()).toEqual([]);
    expect(hit.hits).toEqual([]);
  });
});

/** The frame showing the open message's HTML. */
async function messageFrame(page: Page): Promise<Frame> {
  await expect.poll(() => page.frames().some((f) => /\/api\/messages\/[^/]+\/html$/.test(f.url()))).toBe(true);
  return page.frames().find((f) => /\/api\/messages\/[^/]+\/html$/.test(f.url()))!;
}
