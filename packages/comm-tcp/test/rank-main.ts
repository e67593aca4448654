/**
 * One rank of a multi-process test: joins the job through initDistributed (env RANK, WORLD_SIZE, MASTER_*),
 * runs the scenario named by ZF_TEST_SCENARIO, prints `RESULT <json>` lines, and exits 0 (or non-zero with
 * the error on stderr).
 */
import { initDistributed } from '@zeroflow/core';
import '../src/index.js';
import { scenarios } from './scenarios.js';

const name = process.env.ZF_TEST_SCENARIO ?? 'collectives';
const scenario = scenarios[name];
if (!scenario) throw new Error(`unknown scenario ${name}`);

try {
  const dist = await initDistributed();
  await scenario(dist.world, (r: unknown) => process.stdout.write(`RESULT ${JSON.stringify(r)}\n`));
  await dist.close();
  process.exit(0);
} catch (err) {
  const e = err as Error;
  process.stderr.write(`${e.name}: ${e.message}\n`);
  process.exit(e.name === 'CommMismatchError' ? 3 : e.name === 'CommTimeoutError' ? 4 : 2);
}
