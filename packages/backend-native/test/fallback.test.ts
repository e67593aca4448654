/** With ZEROFLOW_NO_NATIVE=1 the package still imports, says why once on stderr, and `cpu` stays active. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

it('ZEROFLOW_NO_NATIVE=1: imports, warns once, leaves cpu active', () => {
  const script = fileURLToPath(new URL('./fixtures/import-disabled.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, ZEROFLOW_NO_NATIVE: '1' },
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  });
  expect(r.status, r.stderr).toBe(0);
  const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
  expect(out.backend).toBe('cpu');
  expect(out.sum).toBe(12);
  expect(out.status).toMatchObject({ registered: false, active: false });
  expect(out.status.reason).toMatch(/ZEROFLOW_NO_NATIVE=1/);
  const warnings = r.stderr.split('\n').filter((l) => l.includes('[zeroflow/backend-native]'));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatch(/native kernels unavailable .*ZEROFLOW_NO_NATIVE=1/);
});
