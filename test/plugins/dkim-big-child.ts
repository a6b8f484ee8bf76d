/**
 * Child process for the 20 MB test in test/interop/dkim.test.ts: builds a message with a large
 * attachment (streamed from a file), signs it (RSA 2048 + Ed25519) and sends it to the SMTP server
 * on argv port, then prints its own peak RSS and CPU time as JSON. A process of its own so the
 * figure is the signer's, not the test runner's.
 *   argv: port, attachment path, spool dir; env DKIM_RSA / DKIM_ED: the keys (PEM);
 *   DKIM_OFF=1 sends the same message unsigned (the baseline the signing cost is measured against).
 */
import { SmtpClient } from '../../index.js';
import dkim from '../../plugins/dkim/index.js';
import { transformMessage } from './dkim-helpers.js';

const [port, attachment, tmpDir] = process.argv.slice(2) as [string, string, string];
const plugin = dkim({
  tmpDir,
  keys: [
    { domain: 'example.com', selector: 'rsa', privateKey: process.env.DKIM_RSA! },
    { domain: 'example.com', selector: 'ed', privateKey: process.env.DKIM_ED! },
  ],
});
const started = process.cpuUsage();
const { envelope, stream } = await transformMessage(process.env.DKIM_OFF === '1' ? [] : [plugin], {
  from: 'Reports <reports@example.com>',
  to: 'bob@example.org',
  subject: 'The big one',
  text: 'See the attachment.\n',
  html: '<p>See the attachment.</p>',
  attachments: [{ path: attachment, filename: 'data.bin' }],
});
const client = new SmtpClient({ host: '127.0.0.1', port: Number(port), tls: 'none' });
const result = await client.sendmail(envelope.from, [...envelope.to], stream);
await client.quit();
const cpu = process.cpuUsage(started);
process.stdout.write(`${JSON.stringify({ code: result.response.code, maxRssKb: process.resourceUsage().maxRSS, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
