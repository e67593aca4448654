export { freePort, type RankExit, runRanks } from './ranks.js';
export { type RankOut, type RunResult, relDiff, runZero, ZERO_TRAIN_SCRIPT } from './zero-run.js';
