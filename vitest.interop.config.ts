import { defineConfig } from 'vitest/config';

/**
 * The interop suite: real Postfix, Dovecot, aiosmtpd and smtp-sink processes on loopback
 * (test/interop/servers/), installed by .ci/install-interop.sh. Heavy and stateful, so files run
 * one at a time in forked workers (a crashed worker's exit hook kills its servers by PID).
 */
export default defineConfig({
  test: {
    include: ['test/interop/**/*.test.ts', 'test/queue/**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    pool: 'forks',
    fileParallelism: false,
    // Real servers answer the same way every time; a retry would hide harness races.
    retry: 0,
  },
});
