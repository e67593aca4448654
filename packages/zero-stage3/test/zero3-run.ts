/** Runs the ZeRO-3 training fixture on N real rank processes and collects what each rank wrote. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RankExit, runRanks } from '@zeroflow/test-utils';
import { expect } from 'vitest';
import type { Stage3Stats } from '../src/index.js';
import type { FixtureOptions } from './fixtures/zero3-train.js';

const script = join(__dirname, 'fixtures', 'zero3-train.ts');

/** What one rank of the fixture writes. */
export interface RankOut {
  rank: number;
  losses: number[];
  norms: number[];
  memory: Record<string, number>;
  stats: Stage3Stats | null;
  plugins: string[];
  numel: number;
  sizes: number[];
  fullBytesAtBuild: number;
  partitionedWholeAtBuild: number;
  factoryStats: { partitioned: number; whole: number; largestDraw: number } | null;
  materializedBetweenSteps: number;
  materializedAtEnd: number;
  weights: number[][] | null;
}

/** The result of one job: per-step global losses, rank 0's final weights, and every rank's output. */
export interface RunResult {
  losses: number[];
  norms: number[];
  weights: number[][];
  ranks: RankOut[];
}

/** Options of a fixture run (the fixture's, less stage and steps). */
export type RunOptions = Omit<FixtureOptions, 'stage' | 'steps'>;

/** Runs the fixture and returns the raw exits (for runs expected to fail). */
export async function runZeroRaw(n: number, stage: number, steps: number, opts: RunOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), `zf-zero${stage}-${n}-`));
  const options: FixtureOptions = { stage, steps, ...opts };
  const exits: RankExit[] = await runRanks(
    n,
    script,
    (r) => [join(dir, `r${r}.json`), JSON.stringify(options)],
    { ZEROFLOW_COMM: 'tcp', ZEROFLOW_COMM_TIMEOUT_MS: '60000' },
    180_000,
  );
  return { dir, exits };
}

/** Runs `mode` of the fixture at ZeRO `stage` on `n` ranks over tcp; every rank must succeed. */
export async function runZero(n: number, stage: number, steps: number, opts: RunOptions = {}): Promise<RunResult> {
  const { dir, exits } = await runZeroRaw(n, stage, steps, opts);
  for (const e of exits) expect(e.code, `rank ${e.rank} failed:\n${e.output}`).toBe(0);
  const ranks = exits.map((e) => JSON.parse(readFileSync(join(dir, `r${e.rank}.json`), 'utf8')) as RankOut);
  // The global loss of a step is the mean of the ranks' losses (equal micro-batch sizes).
  const losses = ranks[0].losses.map((_, i) => ranks.reduce((a, o) => a + o.losses[i], 0) / n);
  return { losses, norms: ranks[0].norms, weights: ranks[0].weights!, ranks };
}
