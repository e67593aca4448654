/**
 * Starts N real rank processes of test/rank-main.ts on the tcp backend, through test-utils' spawnRanks
 * (PyTorch's env contract and a job token), and parses the `RESULT <json>` lines each rank prints.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RankJob, type RankOutcome as RankProcessOutcome, spawnRanks } from '@zeroflow/test-utils';

const here = dirname(fileURLToPath(import.meta.url));
export const RANK_MAIN = join(here, 'rank-main.ts');

/** A rank's exit, output and the results it printed. */
export interface RankOutcome extends RankProcessOutcome {
  results: any[];
}

export interface Job extends Omit<RankJob, 'outcomes'> {
  outcomes: Promise<RankOutcome[]>;
}

const RESULT_PREFIX = 'RESULT ';

/** Starts `n` ranks of `scenario`; `envFor(rank)` adds or overrides env per rank. */
export async function launch(
  n: number,
  scenario: string,
  envFor: (rank: number) => Record<string, string> = () => ({}),
): Promise<Job> {
  const job = await spawnRanks(n, RANK_MAIN, {
    env: (rank) => ({ ZEROFLOW_COMM: 'tcp', ZF_TEST_SCENARIO: scenario, ...envFor(rank) }),
  });
  const withResults = (o: RankProcessOutcome): RankOutcome => ({
    ...o,
    results: o.stdout
      .split('\n')
      .filter((l) => l.startsWith(RESULT_PREFIX))
      .map((l) => JSON.parse(l.slice(RESULT_PREFIX.length))),
  });
  return { ...job, outcomes: job.outcomes.then((outs) => outs.map(withResults)) };
}
