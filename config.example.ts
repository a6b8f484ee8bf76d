/**
 * An example mailstage config: copy it to `mailstage.config.ts` and adapt.
 *
 *   development  the embedded dev sink (`mailstage dev-server`; `mailstage demo` starts one itself)
 *   production   a real relay on the submission port: STARTTLS required, the password from $SMTP_PASS
 *   local-lmtp   final delivery to a local LMTP server (Dovecot) over its unix socket
 *
 * Pick one with `--env NAME` or MAILSTAGE_ENV. The `batch` section is the mailing `mailstage batch`
 * runs: a dry run by default (renders every row, writes previews), `--send` to send.
 */
import { defineConfig, env } from 'mailstage';
import authCramMd5 from 'mailstage/plugins/auth-cram-md5';
import authLogin from 'mailstage/plugins/auth-login';
import authPlain from 'mailstage/plugins/auth-plain';
import dsn from 'mailstage/plugins/dsn';
import lmtp from 'mailstage/plugins/lmtp';

// The base: what every environment shares.
const smtpPlugins = [authCramMd5(), authPlain(), authLogin(), dsn()];

export default defineConfig({
  plugins: smtpPlugins,
  transport: {
    host: 'smtp.example.com',
    port: 587,
    tls: 'required',
    pool: { maxConnections: 4, maxMessages: 100 },
    timeouts: { connect: 10_000, command: 30_000 },
    retry: { attempts: 3, minDelay: 1000, maxDelay: 30_000 },
  },
  auth: { user: 'mailer@example.com', pass: env('SMTP_PASS') },
  // Bounce reports for failures only, with headers (not the whole message) returned.
  envelope: { dsn: { ret: 'HDRS', notify: ['FAILURE'] } },
  message: {
    from: 'Stagecoach <hello@example.com>',
    replyTo: 'support@example.com',
    headers: { 'X-Mailer': 'mailstage' },
  },
  batch: {
    source: 'examples/recipients.csv',        // columns: email, name, plan, trial_days, signup_date
    templates: {
      subject: { path: 'examples/templates/welcome.subject.hbs' },
      text: { path: 'examples/templates/welcome.text.hbs' },
      html: { path: 'examples/templates/welcome.html.hbs' },
    },
    attachments: [{ path: 'examples/attachments/plan-{{plan}}.txt', filename: 'your-plan.txt' }],
    to: 'email',                               // the column with the recipient
    concurrency: 4,
    rateLimit: { messages: 20, interval: 1000 }, // be gentle with the relay
    previewCount: 5,
    messageIdDomain: 'example.com',
  },
  environments: {
    development: {
      // `mailstage dev-server` listens here; `mailstage demo` injects its own free port.
      transport: {
        host: '127.0.0.1',
        port: 2525,
        tls: 'opportunistic',
        // The dev sink's certificate is generated on start: encrypt, but do not verify it.
        tlsOptions: { rejectUnauthorized: false },
        retry: { attempts: 0 },
      },
      // The sink takes any credentials.
      auth: { user: 'dev', pass: 'dev', mechanisms: ['PLAIN'] },
      batch: { rateLimit: null },
    },
    production: {
      transport: { host: 'smtp.relay.example.com', port: 587, tls: 'required', tlsOptions: { minVersion: 'TLSv1.2' } },
      auth: { user: 'mailer@example.com', pass: env('SMTP_PASS') },
    },
    'local-lmtp': {
      // LMTP is for final delivery into mailboxes on this machine: no relay, no AUTH needed.
      plugins: [lmtp(), dsn()],
      transport: { host: '/var/run/dovecot/lmtp', tls: 'none', pool: { maxConnections: 2 } },
      auth: null,
      envelope: { dsn: null },
    },
  },
});
