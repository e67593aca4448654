// Training throughput and peak RSS of the PyTorch peer's tiny GPT (4.24 M params, micro-batch 8 x 128) in one
// process, for before/after comparisons of kernel changes: run it alternately from two trees, back to back.
// Prints one JSON line: forward+backward tokens/s per step, full ZeroFlow step (AdamW) tokens/s per step,
// tfjs tensor counts after each step (must stay flat), peak RSS (process.resourceUsage().maxRSS) after the
// steps. Usage: node --import tsx bench/fused-step.ts [label] [steps=6]
import { backwardWithHooks, initialize, manualSeed, tf } from '@zeroflow/core';
import { GPT } from '@zeroflow/models';
import '../src/index.js';

const label = process.argv[2] ?? tf.getBackend();
const steps = Number(process.argv[3] ?? 6);
const cfg = { vocabSize: 4096, blockSize: 128, nLayer: 4, nHead: 4, nEmbd: 256 };
const micro = 8;
const tokens = micro * cfg.blockSize;
function batch(seed: number) {
  const ids = new Int32Array(tokens);
  const tg = new Int32Array(tokens);
  for (let i = 0; i < ids.length; i++) {
    ids[i] = (i * 2654435761 + seed * 97) % cfg.vocabSize;
    tg[i] = (ids[i] * 31 + 7) % cfg.vocabSize;
  }
  return { inputIds: ids, targets: tg, shape: [micro, cfg.blockSize] as [number, number] };
}

manualSeed(1);
const model = new GPT(cfg);
const engine = await initialize({
  model,
  config: {
    train_micro_batch_size_per_gpu: micro,
    optimizer: { type: 'AdamW', params: { lr: 1e-3, weight_decay: 0.1 } },
  },
});
engine.backward(() => model.loss(batch(0)));
await engine.step();
const fwdBwd: number[] = [];
for (let s = 0; s < 3; s++) {
  const t = performance.now();
  backwardWithHooks(
    () => model.loss(batch(s)),
    () => {},
  );
  fwdBwd.push((tokens * 1000) / (performance.now() - t));
}
const full: number[] = [];
const numTensors: number[] = [];
for (let s = 0; s < steps; s++) {
  const t = performance.now();
  engine.backward(() => model.loss(batch(s)));
  await engine.step();
  full.push((tokens * 1000) / (performance.now() - t));
  numTensors.push(tf.memory().numTensors);
}
const round = (xs: number[]) => xs.map((x) => Math.round(x));
console.log(
  JSON.stringify({
    label,
    backend: tf.getBackend(),
    fwdBwdTokensPerSec: round(fwdBwd),
    stepTokensPerSec: round(full),
    numTensors,
    maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
await engine.close();
