import { ZeroFlowError } from '../errors.js';
import type { WorldInfo } from '../plugin.js';

function intEnv(env: NodeJS.ProcessEnv, names: string[]): number | undefined {
  for (const n of names) {
    const v = env[n];
    if (v === undefined || v === '') continue;
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0)
      throw new ZeroFlowError(`environment variable ${n}="${v}" must be a non-negative integer`);
    return x;
  }
  return undefined;
}

/**
 * This process's place in the job, from PyTorch's env contract (RANK, WORLD_SIZE, LOCAL_RANK,
 * LOCAL_WORLD_SIZE), else OpenMPI's (OMPI_COMM_WORLD_*), else Slurm's (SLURM_PROCID, ...), else a single
 * process. Explicit `overrides` win. Without tensor or pipeline parallelism every rank is data parallel.
 */
export function resolveWorld(overrides: Partial<WorldInfo> = {}, env: NodeJS.ProcessEnv = process.env): WorldInfo {
  const rank = overrides.rank ?? intEnv(env, ['RANK', 'OMPI_COMM_WORLD_RANK', 'SLURM_PROCID']) ?? 0;
  const worldSize = overrides.worldSize ?? intEnv(env, ['WORLD_SIZE', 'OMPI_COMM_WORLD_SIZE', 'SLURM_NTASKS']) ?? 1;
  const localRank =
    overrides.localRank ?? intEnv(env, ['LOCAL_RANK', 'OMPI_COMM_WORLD_LOCAL_RANK', 'SLURM_LOCALID']) ?? rank;
  const localWorldSize =
    overrides.localWorldSize ??
    intEnv(env, ['LOCAL_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_SIZE', 'SLURM_NTASKS_PER_NODE']) ??
    worldSize;
  const tensorParallelSize = overrides.tensorParallelSize ?? 1;
  const pipelineParallelSize = overrides.pipelineParallelSize ?? 1;
  if (worldSize < 1 || rank >= worldSize) throw new ZeroFlowError(`rank ${rank} is not below world size ${worldSize}`);
  if (worldSize % (tensorParallelSize * pipelineParallelSize) !== 0) {
    throw new ZeroFlowError(
      `world size ${worldSize} is not divisible by tensor (${tensorParallelSize}) x pipeline (${pipelineParallelSize}) parallel sizes`,
    );
  }
  const dataParallelSize = overrides.dataParallelSize ?? worldSize / (tensorParallelSize * pipelineParallelSize);
  const dataParallelRank = overrides.dataParallelRank ?? Math.floor(rank / (tensorParallelSize * pipelineParallelSize));
  return {
    rank,
    worldSize,
    localRank,
    localWorldSize,
    dataParallelRank,
    dataParallelSize,
    tensorParallelSize,
    pipelineParallelSize,
  };
}
