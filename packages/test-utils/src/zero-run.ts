/** Runs the ZeRO training fixture on N real rank processes and collects what each rank wrote. */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { runRanks } from './ranks.js';

/** The rank script: GPT tiny trained with `zero_optimization.stage` (see zero-train.ts). */
export const ZERO_TRAIN_SCRIPT = fileURLToPath(new URL('./zero-train.ts', import.meta.url));

/** What one rank of the fixture writes. */
export interface RankOut {
  rank: number;
  losses: number[];
  norms: number[];
  /** `tf.memory().numTensors` after each optimizer step. */
  numTensors: number[];
  memory: Record<string, number>;
  bucketStats: { buckets: number; bufferBytes: number; peakLiveBytes: number } | null;
  plugins: string[];
  numel: number;
  weights: number[][] | null;
}

/** The result of one job: per-step global losses, rank 0's final weights, and every rank's output. */
export interface RunResult {
  losses: number[];
  norms: number[];
  weights: number[][];
  ranks: RankOut[];
}

/**
 * Runs `mode` (train | save | resume) of the fixture at ZeRO `stage` on `n` ranks over `comm`. The ranks run in
 * the caller's working directory (the testing package's folder), where core resolves the ZeRO plugin packages
 * by name, as it would for a user's job.
 */
export async function runZero(
  n: number,
  stage: number,
  steps: number,
  opts: {
    comm?: string;
    mode?: string;
    ckptDir?: string;
    zero?: Record<string, unknown>;
    /** Top-level config keys merged in, e.g. `{ bf16: { enabled: true } }`. */
    config?: Record<string, unknown>;
  } = {},
): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), `zf-zero${stage}-${n}-`));
  const exits = await runRanks(
    n,
    ZERO_TRAIN_SCRIPT,
    (r) => [
      opts.mode ?? 'train',
      String(stage),
      String(steps),
      join(dir, `r${r}.json`),
      opts.ckptDir ?? '',
      opts.zero ? JSON.stringify(opts.zero) : '',
      opts.config ? JSON.stringify(opts.config) : '',
    ],
    { ZEROFLOW_COMM: opts.comm ?? 'tcp' },
    180_000,
  );
  for (const e of exits) expect(e.code, `rank ${e.rank} failed:\n${e.output}`).toBe(0);
  const ranks = exits.map((e) => JSON.parse(readFileSync(join(dir, `r${e.rank}.json`), 'utf8')) as RankOut);
  // The global loss of a step is the mean of the ranks' losses (equal micro-batch sizes).
  const losses = ranks[0].losses.map((_, i) => ranks.reduce((a, o) => a + o.losses[i], 0) / n);
  return { losses, norms: ranks[0].norms, weights: ranks[0].weights!, ranks };
}

/** Relative L2 difference `|a - b| / |b|`. */
export function relDiff(a: number[], b: number[]): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}
