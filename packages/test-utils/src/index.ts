export { freePort, type RankExit, runRanks } from './ranks.js';
