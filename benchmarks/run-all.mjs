#!/usr/bin/env node
// `pnpm bench [--quick]`: every benchmark of this folder in turn; each writes its section of RESULTS.md.
import { spawnSync } from 'node:child_process';

const extra = process.argv.slice(2);
for (const script of ['train-gpt.ts', 'comm.ts']) {
  console.log(`\n=== ${script} ${extra.join(' ')}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...extra], {
    stdio: 'inherit',
    cwd: import.meta.dirname,
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
