export {
  freePort,
  type RankExit,
  type RankJob,
  type RankOutcome,
  runRanks,
  type SpawnRanksOptions,
  spawnRanks,
} from './ranks.js';
export { type RankOut, type RunResult, relDiff, runZero, ZERO_TRAIN_SCRIPT } from './zero-run.js';
