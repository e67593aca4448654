/**
 * Adam update rate of core's TS loop against the native kernel, in M params/s, on one flat buffer.
 * Usage: node --import tsx bench/adam-rate.ts [millions of params, default 8]. Noisy on a shared machine.
 */
import { Adam } from '@zeroflow/core';
import { nativeFlatKernels } from '../src/index.js';

const n = Math.round(Number(process.argv[2] ?? 8) * 1e6);
const kernels = nativeFlatKernels();
const params = new Float32Array(n).map((_, i) => Math.sin(i));
const grads = new Float32Array(n).map((_, i) => Math.cos(i) * 0.01);

function rate(run: (step: number) => void, steps: number): number {
  run(1); // warm-up (allocates state)
  const t = performance.now();
  for (let s = 2; s < 2 + steps; s++) run(s);
  return (n * steps) / ((performance.now() - t) / 1000) / 1e6;
}

const opt = new Adam([], { lr: 1e-3, weight_decay: 0.01 });
const ts = rate(() => opt.step([{ params, grads }]), 5);
console.log(`Adam (AdamW mode) over ${n / 1e6}M params: core TS ${ts.toFixed(0)} M params/s`);
if (kernels) {
  const m = new Float32Array(n);
  const v = new Float32Array(n);
  const nat = rate((s) => kernels.adam(params, grads, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.01, s, true, true), 20);
  console.log(`native ${nat.toFixed(0)} M params/s (x${(nat / ts).toFixed(1)})`);
}
