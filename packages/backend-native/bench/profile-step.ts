// Per-kernel profile (tf.profile) of one forward+backward of the PyTorch peer's tiny GPT on a backend.
// Usage: node --import tsx bench/profile-step.ts [cpu|zeroflow-cpu]
import { backwardWithHooks, manualSeed, tf } from '@zeroflow/core';
import { GPT } from '@zeroflow/models';
import '../src/index.js';

const backend = process.argv[2] ?? 'zeroflow-cpu';
tf.setBackend(backend);
const cfg = { vocabSize: 4096, blockSize: 128, nLayer: 4, nHead: 4, nEmbd: 256 };
const micro = 8;
function batch(seed: number) {
  const ids = new Int32Array(micro * cfg.blockSize);
  const tg = new Int32Array(micro * cfg.blockSize);
  for (let i = 0; i < ids.length; i++) {
    ids[i] = (i * 2654435761 + seed * 97) % cfg.vocabSize;
    tg[i] = (ids[i] * 31 + 7) % cfg.vocabSize;
  }
  return { inputIds: ids, targets: tg, shape: [micro, cfg.blockSize] as [number, number] };
}
manualSeed(1);
const gpt = new GPT(cfg);
backwardWithHooks(
  () => gpt.loss(batch(0)),
  () => {},
);
const t0 = performance.now();
const info = await tf.profile(() => {
  backwardWithHooks(
    () => gpt.loss(batch(1)),
    () => {},
  );
});
const wall = performance.now() - t0;
const byKernel = new Map<string, { ms: number; n: number; shapes: Map<string, number> }>();
let total = 0;
for (const k of info.kernels) {
  const ms = Number(await k.kernelTimeMs);
  const e = byKernel.get(k.name) ?? { ms: 0, n: 0, shapes: new Map() };
  e.ms += ms;
  e.n++;
  const key = `${k.inputShapes.map((s) => JSON.stringify(s)).join(' ')} ${JSON.stringify((k as any).extraInfo ?? '')}`;
  e.shapes.set(key, (e.shapes.get(key) ?? 0) + ms);
  byKernel.set(k.name, e);
  total += ms;
}
console.log(`profile on ${backend}: ${total.toFixed(1)} ms in kernels, wall ${wall.toFixed(0)} ms`);
for (const [name, e] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25)) {
  console.log(
    `  ${name.padEnd(22)} ${e.ms.toFixed(2).padStart(9)} ms ${String(e.n).padStart(4)}x ${((100 * e.ms) / total).toFixed(1)}%`,
  );
  for (const [s, ms] of [...e.shapes].sort((a, b) => b[1] - a[1]).slice(0, 3))
    console.log(`      ${ms.toFixed(1).padStart(7)} ${s}`);
}
