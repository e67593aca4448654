/**
 * Runs one multi-process benchmark job on this host through test-utils' `spawnRanks` (PyTorch's env
 * contract, a free port, one fresh job token) and collects the JSON result lines the ranks print.
 */
// the ranks module alone: the package's index also holds vitest helpers, which need a vitest run
import { spawnRanks } from '@zeroflow/test-utils/ranks';

/** One job: which script, how many ranks, and what the ranks print their results after. */
export interface RankJobSpec {
  script: string;
  n: number;
  /** Each stdout line starting with this is `prefix + JSON` of one result. */
  resultPrefix: string;
  /** Env over the contract, the same for every rank. */
  env?: Record<string, string>;
  /** Node options before `--import tsx` (e.g. `--expose-gc`). */
  nodeArgs?: string[];
}

/**
 * Runs the job and returns every result line its ranks printed, in rank order.
 * @throws Error naming the first rank that exited non-zero, with the tail of its stderr (after every rank
 * ended, so that no rank outlives the job)
 */
export async function runRankJob<T>(spec: RankJobSpec): Promise<T[]> {
  const job = await spawnRanks(spec.n, spec.script, { nodeArgs: spec.nodeArgs, env: () => spec.env ?? {} });
  const outcomes = await job.outcomes;
  const failed = outcomes.find((o) => o.code !== 0);
  if (failed)
    throw new Error(
      `rank ${failed.rank} of ${spec.n} exited with ${failed.code ?? failed.signal}:\n${failed.stderr.slice(-2000)}`,
    );
  return outcomes.flatMap((o) =>
    o.stdout
      .split('\n')
      .filter((line) => line.startsWith(spec.resultPrefix))
      .map((line) => JSON.parse(line.slice(spec.resultPrefix.length)) as T),
  );
}
