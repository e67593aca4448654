/**
 * Bring your own TensorFlow.js model: a plain tfjs MLP (weights as arrays, a loss written with tfjs ops)
 * trained data-parallel with ZeRO stage 2, through a 25-line adapter (`src/functional-module.ts`).
 *
 *   zeroflow run --nproc-per-node 2 examples/byo-tfjs/train.ts --steps 60
 *   node --import tsx examples/byo-tfjs/train.ts           (one process; stage 2 then has nothing to shard)
 *
 * Flags: --config FILE (DeepSpeed JSON, default ds_config.json), --steps N, --out DIR (writes rank<R>.json
 * with this rank's losses and final weights, for the smoke test).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { initialize, tf } from '@zeroflow/core';
import { FunctionalModule } from './src/functional-module.js';
import { type Batch, collate, DEFAULT_SPEC, initWeights, logits, mlpLoss, syntheticTask } from './src/mlp.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    config: { type: 'string', default: join(here, 'ds_config.json') },
    steps: { type: 'string', default: '60' },
    out: { type: 'string' },
  },
});
const steps = Number(args.steps);
if (!Number.isInteger(steps) || steps < 1) {
  console.error(`--steps must be a positive integer, got "${args.steps}"`);
  process.exit(2);
}

const spec = DEFAULT_SPEC;
// Different init seeds per rank on purpose: the engine broadcasts rank 0's weights, so all ranks start equal.
const rank = Number(process.env.RANK ?? 0);
const model = new FunctionalModule<Batch>(initWeights(spec, 1000 + rank), mlpLoss(spec));
const engine = await initialize({ model, config: resolve(args.config) });
const say = (s: string) => engine.world.rank === 0 && console.log(s);

const train = syntheticTask(spec, 4096, 1);
const val = collate(spec, syntheticTask(spec, 512, 2));
const loader = engine.dataLoader(train, { collate: (items) => collate(spec, items) });

function valAccuracy(): number {
  const pred = engine.inference(() =>
    model.apply((ws) => tf.tidy(() => tf.argMax(logits(ws, tf.tensor2d(val.x, [val.size, spec.inputs])), 1))),
  );
  const p = pred.dataSync();
  pred.dispose();
  let ok = 0;
  for (let i = 0; i < val.size; i++) if (p[i] === val.labels[i]) ok++;
  return ok / val.size;
}

const stage = engine.config.zero_optimization.stage;
say(
  `plain tfjs MLP ${spec.inputs}-${spec.hidden}-${spec.classes} (${model.numParameters()} parameters: ${model.weightNames.join(', ')}); ` +
    `${engine.world.dataParallelSize} data-parallel rank(s), ZeRO stage ${stage}`,
);
const valLossBefore = engine.evaluate(() => model.loss(val));
const accBefore = valAccuracy();
const losses: number[] = [];
while (engine.globalSteps < steps) {
  for (const batch of loader) {
    engine.backward(() => model.loss(batch));
    const out = await engine.step();
    if (!out) continue;
    losses.push(out.loss);
    if (engine.globalSteps % 10 === 0) say(`step ${engine.globalSteps}: loss ${out.loss.toFixed(4)}`);
    if (engine.globalSteps >= steps) break;
  }
}
const valLoss = engine.evaluate(() => model.loss(val));
const acc = valAccuracy();
say(
  `validation loss ${valLossBefore.toFixed(4)} -> ${valLoss.toFixed(4)}, accuracy ${(accBefore * 100).toFixed(1)}% -> ${(acc * 100).toFixed(1)}%`,
);
// bytes this rank holds per category: under stage 1/2 the optimizer state (and stage 2's gradients) are 1/N
const memory = engine.memoryReport();
say(
  `rank 0 holds ${Object.entries(memory)
    .map(([k, v]) => `${k} ${v} B`)
    .join(', ')}`,
);
say(`RESULT ${JSON.stringify({ steps: engine.globalSteps, stage, valLossBefore, valLoss, accBefore, acc, memory })}`);

if (args.out) {
  const dir = resolve(args.out);
  mkdirSync(dir, { recursive: true });
  const weights = Object.fromEntries(Object.entries(model.weightValues()).map(([n, w]) => [n, Array.from(w.values)]));
  writeFileSync(join(dir, `rank${engine.world.rank}.json`), JSON.stringify({ losses, valLoss, memory, weights }));
}
await engine.close();
