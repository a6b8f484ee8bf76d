/**
 * Flat memory: the built CLI runs a dry run over a generated 1 000 000-row CSV in a child process;
 * its peak RSS (measured in the child at exit) must stay under 200 MB. Set MAILSTAGE_MEMORY_ROWS
 * to try another size.
 */
import { createWriteStream, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../cli/run.js';
import { tempDir } from './helpers.js';

const ROWS = Number(process.env['MAILSTAGE_MEMORY_ROWS'] ?? 1_000_000);
// Preloaded into the child: prints its peak RSS when it exits.
const REPORT_RSS = `data:text/javascript,process.on('exit',()=>process.stderr.write('PEAK_RSS_KB '+process.resourceUsage().maxRSS+'\\n'))`;

describe('memory', () => {
  it(`a ${ROWS}-row dry run stays under 200 MB peak RSS`, async () => {
    const dir = tempDir();
    const out = createWriteStream(path.join(dir, 'rows.csv'));
    out.write('email,name,n\n');
    for (let n = 1; n <= ROWS; n++) if (!out.write(`user${n}@example.test,User ${n},${n}\n`)) await once(out, 'drain');
    out.end();
    await once(out, 'finish');
    writeFileSync(path.join(dir, 'mailstage.config.json'), JSON.stringify({
      transport: { host: '127.0.0.1', port: 1, tls: 'none' },
      message: { from: 'sender@example.test' },
      batch: { source: 'rows.csv', templates: { subject: 'Hello {{name}}', text: 'Row {{n}} for {{name}} <{{email}}>' }, previewCount: 2 },
    }));
    const started = performance.now();
    const r = await runCli(['batch', '--no-progress', '--report', 'report.json'], { cwd: dir, dist: true, nodeArgs: ['--import', REPORT_RSS] });
    const seconds = (performance.now() - started) / 1000;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`valid\\s+${ROWS}\\b`));
    const peakMb = Number(/PEAK_RSS_KB (\d+)/.exec(r.stderr)![1]) / 1024;
    console.log(`memory: ${ROWS} rows dry run (with JSON report) in ${seconds.toFixed(1)} s, peak RSS ${peakMb.toFixed(0)} MB`);
    expect(peakMb).toBeLessThan(200);
  }, 180_000);
});
