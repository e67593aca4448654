/**
 * Trains a small regressor with a user-written plugin registered through the public plugin interface:
 * `grad_norm_logger` (src/grad-norm-logger.ts) writes the global gradient norm per step to a CSV.
 *
 *   node --import tsx examples/custom-plugin/train.ts --steps 50
 *   zeroflow run --nproc-per-node 2 examples/custom-plugin/train.ts      (the norm is global: rank 0 writes)
 *
 * Flags: --config FILE (default ds_config.json, which holds the plugin's `grad_norm_logger` section), --steps N.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { trainDemo } from './src/demo.js';
import { gradNormLogger } from './src/grad-norm-logger.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    config: { type: 'string', default: join(here, 'ds_config.json') },
    steps: { type: 'string', default: '50' },
  },
});
const steps = Number(args.steps);
if (!Number.isInteger(steps) || steps < 1) {
  console.error(`--steps must be a positive integer, got "${args.steps}"`);
  process.exit(2);
}

// the launcher sets RANK; rank 0 prints (the engine does not exist yet inside onStep's first call)
const rank = Number(process.env.RANK ?? 0);
const logger = gradNormLogger();
const { engine, losses } = await trainDemo({
  config: resolve(args.config),
  steps,
  plugins: [logger],
  onStep: (step, loss, norm) => {
    if (rank === 0 && (step % 10 === 0 || step === steps))
      console.log(`step ${step}: loss ${loss.toFixed(4)}, grad norm ${norm.toFixed(4)}`);
  },
});
await engine.close();
if (rank === 0) {
  console.log(
    `loss ${losses[0].toFixed(4)} -> ${losses[losses.length - 1].toFixed(4)}; gradient norms in ${logger.outputPath()}`,
  );
}
