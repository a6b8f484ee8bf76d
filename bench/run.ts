/**
 * `npm run bench [-- --quick] [-- --rounds N] [-- --only 1,2]`: mailstage against nodemailer 10 (and
 * Postfix's smtp-source as the ceiling where installed), each run in its own child process, in
 * alternation, several rounds; medians and ratios into bench/results.md and stdout.
 *
 * The sink is Postfix's `smtp-sink` started here on a free loopback port (our own process, stopped by
 * PID), else an in-process smtp-server. The worker (bench/worker.ts) is bundled with esbuild (tsx's
 * own dependency) into bench/.build so the children are plain node: no loader thread in their RSS.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Task, WorkerResult } from './worker.js';
import { ensureBigFile } from './payload.js';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(BENCH, '..');
const BUILD = join(BENCH, '.build');

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const arg = (name: string): string | undefined => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const ROUNDS = Number(arg('--rounds') ?? (QUICK ? 1 : 3));
const ONLY = new Set((arg('--only') ?? '1,2,3,4,5,6').split(',').map(Number));
const SCALE = QUICK ? 0.1 : 1;
const MSGS = Math.round(20_000 * SCALE);
const BIG5 = Math.round(200 * SCALE) * 1024 * 1024;
const BIG6 = QUICK ? 100 * 1024 * 1024 : 1024 * 1024 * 1024;
const WORK = join(tmpdir(), 'mailstage-bench');

// ---- helpers ---------------------------------------------------------------------------------------

function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  const p = r.stdout.trim();
  return r.status === 0 && p ? p : undefined;
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function waitForPort(port: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((res, rej) => {
    const tryOnce = () => {
      const sock = connect(port, '127.0.0.1');
      sock.once('data', () => { sock.destroy(); res(); });
      sock.once('error', () => {
        sock.destroy();
        if (Date.now() > deadline) rej(new Error(`nothing answers on port ${port}`));
        else setTimeout(tryOnce, 50);
      });
    };
    tryOnce();
  });
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

// ---- sinks -----------------------------------------------------------------------------------------

interface Sink { readonly port: number; readonly kind: string; stop(): Promise<void> }

const TASKSET = which('taskset');
const SMTP_SINK = which('smtp-sink') ?? (existsSync('/usr/sbin/smtp-sink') ? '/usr/sbin/smtp-sink' : undefined);
const SMTP_SOURCE = which('smtp-source') ?? (existsSync('/usr/sbin/smtp-source') ? '/usr/sbin/smtp-source' : undefined);
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

async function startSmtpSink(pinned: boolean): Promise<Sink> {
  const port = await freePort();
  // No -c (no counter), a 1024 backlog; root must drop privileges (-u nobody).
  const args = [...(process.getuid?.() === 0 ? ['-u', 'nobody'] : []), `127.0.0.1:${port}`, '1024'];
  const cmd = pinned && TASKSET ? TASKSET : SMTP_SINK!;
  const full = pinned && TASKSET ? ['-c', '0', SMTP_SINK!, ...args] : args;
  const child: ChildProcess = spawn(cmd, full, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  try {
    await waitForPort(port);
  } catch (e) {
    child.kill('SIGTERM');
    throw new Error(`smtp-sink did not start: ${err || (e as Error).message}`);
  }
  return {
    port, kind: `Postfix smtp-sink${pinned && TASKSET ? ' (pinned to CPU 0)' : ''}`,
    stop: () => new Promise((res) => {
      if (child.exitCode !== null) return res();
      child.once('exit', () => res());
      child.kill('SIGTERM');
    }),
  };
}

async function startSmtpServer(): Promise<Sink> {
  const { SMTPServer } = await import('smtp-server');
  const server = new SMTPServer({
    logger: false, authOptional: true, hideSTARTTLS: true, disableReverseLookup: true, size: 0,
    onData(stream: NodeJS.ReadableStream, _s: unknown, cb: () => void) { stream.on('data', () => undefined); stream.on('end', () => cb()); },
  } as never);
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return { port, kind: 'in-process smtp-server (smtp-sink not installed; the sink shares a CPU with the orchestrator and is slower)', stop: () => new Promise((r) => server.close(() => r())) };
}

// ---- build -----------------------------------------------------------------------------------------

interface Built { readonly mailer?: string; readonly runner?: string; readonly notes: string[] }

async function bundle(): Promise<Built> {
  const { build } = await import('esbuild');
  rmSync(BUILD, { recursive: true, force: true });
  mkdirSync(BUILD, { recursive: true });
  const notes: string[] = [];
  const entries: Record<string, string> = { worker: join(BENCH, 'worker.ts') };
  let mailer: string | undefined;
  let runner: string | undefined;
  const exportsName = (file: string, name: string) => existsSync(file) && new RegExp(`export\\s+(async\\s+)?(function|const|class)\\s+${name}\\b|export\\s*\\{[^}]*\\b${name}\\b`).test(readFileSync(file, 'utf8'));
  const mailerFile = join(ROOT, 'core/mailer.ts');
  if (existsSync(mailerFile)) {
    // The package entry registers the built-in message builders the Mailer's sendMail needs.
    const from = exportsName(mailerFile, 'createMailer') ? mailerFile : join(ROOT, 'index.ts');
    const entry = join(BUILD, 'mailer-entry.ts');
    writeFileSync(entry, `import ${JSON.stringify(join(ROOT, 'index.ts'))};\nexport { createMailer } from ${JSON.stringify(from)};\n`);
    entries.mailer = entry;
    mailer = from;
  } else notes.push('Scenario 3: core/mailer.ts does not exist yet: the mailstage side was skipped.');
  const runnerFile = ['runner/index.ts', 'runner/batch.ts', 'runner/run.ts'].map((f) => join(ROOT, f)).find(existsSync);
  if (runnerFile) {
    const entry = join(BUILD, 'runner-entry.ts');
    writeFileSync(entry, `import ${JSON.stringify(join(ROOT, 'index.ts'))};\nexport * from ${JSON.stringify(runnerFile)};\n`
      + `export { resolveConfig } from ${JSON.stringify(join(ROOT, 'core/config/index.ts'))};\n`
      + (mailer ? `export { createMailer } from ${JSON.stringify(mailer)};\n` : ''));
    entries.runner = entry;
    runner = runnerFile;
  } else notes.push('Scenario 4: runner/ does not exist yet: the mailstage side was skipped.');
  const tryBuild = async (eps: Record<string, string>) => build({
    entryPoints: eps, bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20',
    outdir: BUILD, packages: 'external', logLevel: 'silent', sourcemap: false,
  });
  try {
    await tryBuild(entries);
  } catch (err) {
    // A module under construction elsewhere must not stop the raw scenarios.
    notes.push(`Mailer/runner bundle failed (${String((err as Error).message).split('\n')[0]}): scenarios 3/4 skipped for mailstage.`);
    await tryBuild({ worker: entries.worker! });
    mailer = undefined;
    runner = undefined;
  }
  return { mailer, runner, notes };
}

// ---- runs ------------------------------------------------------------------------------------------

function runWorker(task: Task, pin: boolean): Promise<WorkerResult> {
  const args = [join(BUILD, 'worker.js'), JSON.stringify(task)];
  const [cmd, full] = pin && TASKSET ? [TASKSET, ['-c', '0', process.execPath, ...args]] : [process.execPath, args];
  return new Promise((res) => {
    const child = spawn(cmd, full, { stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
    child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    child.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      try {
        res(JSON.parse(line) as WorkerResult);
      } catch {
        res({ ok: false, messages: 0, bytes: 0, wallMs: 0, cpuUs: 0, maxRssKB: 0, error: `worker exited ${code}: ${(err || out).slice(-400)}` });
      }
    });
  });
}

interface SourceResult { readonly wallMs: number; readonly cpuUs?: number; readonly maxRssKB?: number; readonly ok: boolean; readonly error?: string }

/** Postfix smtp-source: HELO, no pipelining; `-d` keeps each session's connection. */
function runSmtpSource(port: number, sessions: number, messages: number, length: number, pin: boolean): Promise<SourceResult> {
  const src = ['-s', String(sessions), '-m', String(messages), '-l', String(length), '-f', 'bench@example.org', '-t', 'sink@example.net',
    ...(messages > 1 ? ['-d'] : []), `127.0.0.1:${port}`];
  let argv2 = [SMTP_SOURCE!, ...src];
  if (TIME) argv2 = [TIME, '-f', 'RUSAGE %U %S %M', ...argv2];
  if (pin && TASKSET) argv2 = [TASKSET, '-c', '0', ...argv2];
  return new Promise((res) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(argv2[0]!, argv2.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
    child.on('exit', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      const m = /RUSAGE ([\d.]+) ([\d.]+) (\d+)/.exec(err);
      res({
        ok: code === 0, wallMs, error: code === 0 ? undefined : err.slice(-300),
        cpuUs: m ? (Number(m[1]) + Number(m[2])) * 1e6 : undefined, maxRssKB: m ? Number(m[3]) : undefined,
      });
    });
  });
}

// ---- the scenarios ---------------------------------------------------------------------------------

interface Row {
  scenario: string;
  client: string;
  rate?: number;      // msg/s or MB/s
  cpu?: number;       // µs per message or ms per MB
  rss?: number;       // MB
  ratio?: string;
  target?: string;
  met?: string;
  note?: string;
  perMB: boolean;
}

interface Spec {
  readonly id: 1 | 2 | 3 | 4 | 5 | 6;
  readonly title: string;
  readonly connections: number;
  readonly messages: number;
  readonly pin: boolean;
  readonly perMB: boolean;
  readonly source?: { sessions: number; messages: number; length: number };
}

const SPECS: Spec[] = [
  { id: 1, title: `1. ${MSGS} raw 1 KB msgs, 1 conn (client+sink pinned to CPU 0)`, connections: 1, messages: MSGS, pin: true, perMB: false, source: { sessions: 1, messages: MSGS, length: 1024 } },
  { id: 2, title: `2. ${MSGS} raw 1 KB msgs, 8 conns`, connections: 8, messages: MSGS, pin: false, perMB: false, source: { sessions: 8, messages: MSGS, length: 1024 } },
  { id: 3, title: `3. ${MSGS} composed msgs (text+html+2 KB attachment), pool of 8`, connections: 8, messages: MSGS, pin: false, perMB: false },
  { id: 4, title: `4. templated batch, ${MSGS} rows (runner vs nodemailer+handlebars loop), 8 conns`, connections: 8, messages: MSGS, pin: false, perMB: false },
  { id: 5, title: `5. one ${BIG5 >> 20} MB body, 1/3 of lines start with "."`, connections: 1, messages: 1, pin: false, perMB: true, source: { sessions: 1, messages: 1, length: BIG5 } },
  { id: 6, title: `6. one ${BIG6 >> 20} MB body streamed from a file`, connections: 1, messages: 1, pin: false, perMB: true },
];

async function main(): Promise<void> {
  mkdirSync(WORK, { recursive: true });
  const built = await bundle();
  const sinkFree = SMTP_SINK ? await startSmtpSink(false) : await startSmtpServer();
  const sinkPinned = SMTP_SINK && TASKSET ? await startSmtpSink(true) : sinkFree;
  const bigFile = join(WORK, `body-${BIG6}.eml`);
  if (ONLY.has(6)) await ensureBigFile(bigFile, BIG6);
  console.log(`sink: ${sinkFree.kind}${SMTP_SOURCE ? '; smtp-source as the ceiling' : '; smtp-source not installed'}; ${ROUNDS} round(s)${QUICK ? ' (--quick: counts ÷10)' : ''}`);
  const rows: Row[] = [];
  const notes = [...built.notes];
  const stops = [sinkFree, sinkPinned];
  try {
    for (const spec of SPECS) {
      if (!ONLY.has(spec.id)) continue;
      const sink = spec.pin ? sinkPinned : sinkFree;
      const results: Record<string, WorkerResult[]> = { mailstage: [], nodemailer: [] };
      const sources: SourceResult[] = [];
      const errors = new Set<string>();
      for (let r = 0; r < ROUNDS; r++) {
        // Alternate which client goes first, so drift on the machine does not favour one.
        const order = r % 2 === 0 ? (['mailstage', 'nodemailer'] as const) : (['nodemailer', 'mailstage'] as const);
        for (const client of order) {
          const task: Task = {
            scenario: spec.id, client, host: '127.0.0.1', port: sink.port, messages: spec.messages, connections: spec.connections,
            bodyBytes: spec.id === 5 ? BIG5 : undefined, file: spec.id === 6 ? bigFile : undefined, repoRoot: ROOT, workDir: WORK,
          };
          const res = await runWorker(task, spec.pin);
          if (res.ok) results[client]!.push(res); else errors.add(`${client}: ${res.error?.split('\n')[0]}`);
          process.stdout.write(res.ok ? '.' : 'x');
        }
        if (spec.source && SMTP_SOURCE) {
          const s = await runSmtpSource(sink.port, spec.source.sessions, spec.source.messages, spec.source.length, spec.pin);
          if (s.ok) sources.push(s); else errors.add(`smtp-source: ${s.error}`);
          process.stdout.write(s.ok ? '.' : 'x');
        }
      }
      process.stdout.write('\n');
      for (const e of errors) notes.push(`Scenario ${spec.id}: ${e}`);
      rows.push(...summarise(spec, results, sources));
    }
  } finally {
    for (const s of new Set(stops)) await s.stop();
  }
  const md = report(rows, notes);
  writeFileSync(join(BENCH, 'results.md'), md);
  console.log(`\n${md}`);
  console.log(`written to ${join(BENCH, 'results.md')}`);
}

function summarise(spec: Spec, results: Record<string, WorkerResult[]>, sources: SourceResult[]): Row[] {
  const rows: Row[] = [];
  const stat = (rs: WorkerResult[]) => {
    if (rs.length === 0) return undefined;
    const mb = rs[0]!.bytes / 1048576;
    return spec.perMB
      ? { rate: median(rs.map((r) => mb / (r.wallMs / 1000))), cpu: median(rs.map((r) => r.cpuUs / 1000 / mb)), rss: median(rs.map((r) => r.maxRssKB / 1024)), note: rs[0]!.note }
      : { rate: median(rs.map((r) => r.messages / (r.wallMs / 1000))), cpu: median(rs.map((r) => r.cpuUs / r.messages)), rss: median(rs.map((r) => r.maxRssKB / 1024)), note: rs[0]!.note };
  };
  const ms = stat(results.mailstage!);
  const nm = stat(results.nodemailer!);
  const src = sources.length === 0 ? undefined : (() => {
    const mb = spec.source!.length * spec.source!.messages / 1048576;
    return spec.perMB
      ? { rate: median(sources.map((s) => mb / (s.wallMs / 1000))), cpu: sources[0]!.cpuUs === undefined ? undefined : median(sources.map((s) => s.cpuUs! / 1000 / mb)), rss: sources[0]!.maxRssKB === undefined ? undefined : median(sources.map((s) => s.maxRssKB! / 1024)) }
      : { rate: median(sources.map((s) => spec.source!.messages / (s.wallMs / 1000))), cpu: sources[0]!.cpuUs === undefined ? undefined : median(sources.map((s) => s.cpuUs! / spec.source!.messages)), rss: sources[0]!.maxRssKB === undefined ? undefined : median(sources.map((s) => s.maxRssKB! / 1024)) };
  })();
  const ratio = ms && nm ? ms.rate / nm.rate : undefined;
  const cpuRatio = ms && nm ? nm.cpu / ms.cpu : undefined;
  let target = '';
  let met: boolean | undefined;
  switch (spec.id) {
    case 1: target = '≥ 3× nodemailer'; met = ratio === undefined ? undefined : ratio >= 3; break;
    case 2: {
      const vsSrc = ms && src ? ms.rate / src.rate : undefined;
      target = `≥ 3× nodemailer, ≥ 0.5× smtp-source${vsSrc === undefined ? '' : ` (is ${vsSrc.toFixed(2)}×)`}`;
      met = ratio === undefined ? undefined : ratio >= 3 && (vsSrc === undefined || vsSrc >= 0.5);
      break;
    }
    case 3: case 4: target = '≥ 2× nodemailer'; met = ratio === undefined ? undefined : ratio >= 2; break;
    case 5: target = '≤ 4 ms CPU/MB'; met = ms ? ms.cpu <= 4 : undefined; break;
    case 6: target = 'peak RSS < 100 MB'; met = ms ? ms.rss < 100 : undefined; break;
  }
  rows.push({
    scenario: spec.title, client: 'mailstage', rate: ms?.rate, cpu: ms?.cpu, rss: ms?.rss,
    ratio: ratio === undefined ? '' : `${ratio.toFixed(2)}× (CPU ${cpuRatio!.toFixed(2)}× less)`,
    target, met: met === undefined ? 'n/a' : met ? 'met' : 'MISSED', note: ms?.note ?? (results.mailstage!.length ? '' : 'not run'), perMB: spec.perMB,
  });
  rows.push({ scenario: '', client: 'nodemailer 10', rate: nm?.rate, cpu: nm?.cpu, rss: nm?.rss, note: nm ? '' : 'not run', perMB: spec.perMB });
  if (src) rows.push({ scenario: '', client: 'smtp-source (ceiling)', rate: src.rate, cpu: src.cpu, rss: src.rss, note: 'C, HELO, no pipelining', perMB: spec.perMB });
  return rows;
}

function report(rows: Row[], notes: string[]): string {
  const cpuModel = cpus()[0]?.model ?? 'unknown';
  const fmt = (v: number | undefined, d = 0) => (v === undefined ? '–' : v.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));
  const lines = [
    '# mailstage benchmark results',
    '',
    `- date: ${new Date().toISOString()}`,
    `- machine: ${cpus().length} CPUs (nproc ${spawnSync('nproc', { encoding: 'utf8' }).stdout.trim() || '?'}), ${cpuModel}; node ${process.version}`,
    `- sink: ${SMTP_SINK ? 'Postfix smtp-sink on a free 127.0.0.1 port (backlog 1024, no counter)' : 'in-process smtp-server (smtp-sink not installed)'}; nodemailer ${nodemailerVersion()}`,
    `- ${ROUNDS} round(s) per scenario, clients alternated, each run in its own child process; medians shown${QUICK ? '; --quick (counts ÷10, smaller bodies)' : ''}`,
    `- scenario 1: client and sink pinned to CPU 0 with \`taskset -c 0\`${TASKSET ? '' : ' — taskset missing, NOT pinned'} (one-connection rates swing with CPU placement otherwise)`,
    '- rate: messages/s (scenarios 1–4) or MB/s (5, 6); CPU: client process CPU (user+sys, process.cpuUsage around the sending only) in µs per message or ms per MB; RSS: peak (process.resourceUsage().maxRSS, whole process)',
    '',
    '| scenario | client | rate | CPU | peak RSS MB | mailstage / nodemailer | target | |',
    '|---|---|---:|---:|---:|---|---|---|',
  ];
  for (const r of rows) {
    const perMB = r.perMB;
    const unitRate = perMB ? 'MB/s' : 'msg/s';
    const unitCpu = perMB ? 'ms/MB' : 'µs/msg';
    const rate = r.rate === undefined ? (r.note || '–') : `${fmt(r.rate)} ${unitRate}`;
    const cpu = r.cpu === undefined ? '–' : `${fmt(r.cpu, perMB ? 2 : 1)} ${unitCpu}`;
    lines.push(`| ${r.scenario} | ${r.client}${r.note && r.rate !== undefined ? ` (${r.note})` : ''} | ${rate} | ${cpu} | ${fmt(r.rss)} | ${r.ratio ?? ''} | ${r.target ?? ''} | ${r.met ?? ''} |`);
  }
  if (notes.length) lines.push('', '## Notes', '', ...notes.map((n) => `- ${n}`));
  return `${lines.join('\n')}\n`;
}

function nodemailerVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(ROOT, 'node_modules/nodemailer/package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
