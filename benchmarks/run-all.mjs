#!/usr/bin/env node
// `pnpm bench [--quick]`: every benchmark of this folder in turn (each writes its section of RESULTS.md and
// its rows to results/*.json), the PyTorch peer among them (python3-torch from Debian: installed when run as
// root, otherwise detected, and skipped with the reason when absent), then the SVG plots.
import { spawnSync } from 'node:child_process';

const quick = process.argv.includes('--quick');
const runs = [
  ['train-gpt.ts', quick ? ['--quick'] : []],
  // right after train-gpt (a back-to-back comparison), and before zero.ts, which runs the peer too once installed
  ['peer.ts', ['--install-peer', ...(quick ? ['--world-sizes', '1', '--steps', '10'] : [])]],
  ['kernels.ts', quick ? ['--quick'] : []],
  ['comm.ts', quick ? ['--quick'] : []],
  ['zero.ts', quick ? ['--quick'] : []],
  ['amp.ts', quick ? ['--quick'] : []],
  ['plots.ts', []],
];
for (const [script, args] of runs) {
  console.log(`\n=== ${script} ${args.join(' ')}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
    stdio: 'inherit',
    cwd: import.meta.dirname,
  });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
