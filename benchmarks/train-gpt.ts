/**
 * Single-process training throughput of the GPT models (fp32) on the active tfjs backend: `zeroflow-cpu`
 * (native kernels, @zeroflow/backend-native) when built, else tfjs's `cpu`; the report names it. For each preset, alternating repeats of:
 *  - baseline: forward + backward only (core's backwardWithHooks, gradients dropped);
 *  - engine:   a full ZeroFlow training step (forward, backward, gradient accumulation, AdamW step).
 * Prints tokens/s (median and min-max over repeats) and the engine/baseline ratio, and writes the
 * `train-gpt` section of RESULTS.md. Usage: node --import tsx train-gpt.ts [--quick]
 */
import { backwardWithHooks, initialize, manualSeed, tf } from '@zeroflow/core';
import { GPT, type GPTConfig } from '@zeroflow/models';
import { machineLine, stats, writeJson, writeSection } from './results-file.js';

const quick = process.argv.includes('--quick');
const PRESETS: Record<string, GPTConfig & { micro: number; blockSize: number }> = {
  // the main example's model (examples/gpt/model.json)
  example: { vocabSize: 2048, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128, micro: 8 },
  // the PyTorch peer's `tiny` preset (../shared/peers/gpt_peer.py): 4.24 M parameters, micro-batch 8
  'peer-tiny': { vocabSize: 4096, blockSize: 128, nLayer: 4, nHead: 4, nEmbd: 256, micro: 8 },
};
const repeats = quick ? 2 : 3;
const stepsFor = (name: string) => (name === 'peer-tiny' ? (quick ? 1 : 2) : quick ? 4 : 8);

function batch(micro: number, T: number, vocab: number, seed: number) {
  const ids = new Int32Array(micro * T);
  const tg = new Int32Array(micro * T);
  for (let i = 0; i < ids.length; i++) {
    ids[i] = (i * 2654435761 + seed * 97) % vocab;
    tg[i] = (ids[i] * 31 + 7) % vocab;
  }
  return { inputIds: ids, targets: tg, shape: [micro, T] as [number, number] };
}

const rows: string[] = [];
const jsonRows: { preset: string; params: number; tokensPerSecBaseline: number; tokensPerSecEngine: number }[] = [];
for (const [name, p] of Object.entries(PRESETS)) {
  manualSeed(1);
  const model = new GPT(p);
  const engine = await initialize({
    model,
    config: {
      train_micro_batch_size_per_gpu: p.micro,
      optimizer: { type: 'AdamW', params: { lr: 1e-3, weight_decay: 0.1 } },
    },
  });
  const tokens = p.micro * p.blockSize;
  const steps = stepsFor(name);
  // warm-up (first-call kernel setup)
  engine.backward(() => model.loss(batch(p.micro, p.blockSize, p.vocabSize, 0)));
  await engine.step();
  const base: number[] = [];
  const full: number[] = [];
  for (let r = 0; r < repeats; r++) {
    let t = performance.now();
    for (let s = 0; s < steps; s++)
      backwardWithHooks(
        () => model.loss(batch(p.micro, p.blockSize, p.vocabSize, s)),
        () => {},
      );
    base.push((steps * tokens * 1000) / (performance.now() - t));
    t = performance.now();
    for (let s = 0; s < steps; s++) {
      engine.backward(() => model.loss(batch(p.micro, p.blockSize, p.vocabSize, s)));
      await engine.step();
    }
    full.push((steps * tokens * 1000) / (performance.now() - t));
  }
  const b = stats(base);
  const f = stats(full);
  const line = `| ${name} | ${(model.numParameters() / 1e6).toFixed(2)} M | ${p.micro}x${p.blockSize} | ${b.median.toFixed(0)} (${b.min.toFixed(0)}-${b.max.toFixed(0)}) | ${f.median.toFixed(0)} (${f.min.toFixed(0)}-${f.max.toFixed(0)}) | ${(f.median / b.median).toFixed(3)} |`;
  console.log(line);
  rows.push(line);
  jsonRows.push({
    preset: name,
    params: model.numParameters(),
    tokensPerSecBaseline: b.median,
    tokensPerSecEngine: f.median,
  });
  await engine.close();
  model.dispose();
}

writeJson('train-gpt', jsonRows, {
  machine: machineLine(),
  command: `pnpm --filter @zeroflow/benchmarks bench${quick ? ' -- --quick' : ''}`,
});
writeSection(
  'train-gpt',
  `## Single-process training throughput (fp32)

Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}. tfjs backend: \`${tf.getBackend()}\`${tf.getBackend() === 'zeroflow-cpu' ? ' (native matmul, element-wise, unary math, reductions, softmax, transpose, gather/concat and optimizer kernels)' : ' (JS kernels: native ones not built)'}.
Command: \`pnpm --filter @zeroflow/benchmarks bench${quick ? ' -- --quick' : ''}\` (${repeats} alternating repeats; median (min-max)).

| preset | params | micro-batch x seq | forward+backward only, tokens/s | full ZeroFlow step, tokens/s | engine / baseline |
|---|---|---|---|---|---|
${rows.join('\n')}

The baseline is the same model's forward and backward with gradients dropped, measured in the same run; the
ratio shows what the engine adds (gradient accumulation into flat buffers, AdamW, bookkeeping). For scale, not
measured in this run: the PyTorch peer trains \`peer-tiny\` at 2.9k-4.3k tokens/s fp32 on this kind of machine
(../shared/peers/RESULTS.md). With the native math kernels (issue 6) matmul dominates the step's kernel time
(see the \`kernels\` section); \`ZEROFLOW_NATIVE_MATH=0\` gives the state before them for an A/B run. Before the
native backend, the \`example\` preset trained at 220-300 tokens/s in the main job (tfjs's JS matmul, 0.6-0.8
GFLOP/s).`,
);
