/**
 * Quick measurements of @zeroflow/backend-native against tfjs's JS cpu backend, in one process:
 *  1. matmul GFLOP/s at n = 512 and 1024 (square, float32);
 *  2. the GPT example model's training step (core's initialize + engine.backward + engine.step; GPT
 *     { vocabSize: 1024, blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 64 }, micro-batch 8), ms/step;
 *  3. with --profile, tf.profile of one forward+backward on each backend: the kernels by total time.
 * Usage: node --import tsx bench/matmul-and-gpt-step.ts [--quick] [--profile]
 * Timings on a shared machine are noisy; the lead wires this into benchmarks/.
 */
import { backwardWithHooks, initialize, manualSeed, tf } from '@zeroflow/core';
import { GPT, type GPTConfig } from '@zeroflow/models';
import { NATIVE_BACKEND_NAME, nativeBackendStatus } from '../src/index.js';

const quick = process.argv.includes('--quick');
const profile = process.argv.includes('--profile');
const status = nativeBackendStatus();
if (!status?.registered) {
  console.log(`native backend unavailable: ${status?.reason}`);
  process.exit(0);
}
console.log(`native kernels: ${JSON.stringify(status.info)}; overridden: ${status.nativeKernels.join(', ')}`);

function matmulGflops(backend: string, n: number, reps: number): number {
  tf.setBackend(backend);
  const a = tf.randomUniform([n, n]);
  const b = tf.randomUniform([n, n]);
  tf.matMul(a, b).dispose(); // warm-up
  const t = performance.now();
  for (let i = 0; i < reps; i++) tf.matMul(a, b).dataSync();
  const s = (performance.now() - t) / 1000;
  tf.dispose([a, b]);
  return (2 * n ** 3 * reps) / s / 1e9;
}

for (const n of [512, 1024]) {
  const nat = matmulGflops(NATIVE_BACKEND_NAME, n, n === 512 ? 20 : 5);
  const cpu = matmulGflops('cpu', n, 1);
  console.log(
    `matmul ${n}^3: ${NATIVE_BACKEND_NAME} ${nat.toFixed(1)} GFLOP/s, cpu ${cpu.toFixed(2)} GFLOP/s (x${(nat / cpu).toFixed(0)})`,
  );
}

const model = { vocabSize: 1024, blockSize: 64, nLayer: 2, nHead: 4, nEmbd: 64 } satisfies GPTConfig;
const micro = 8;

function batch(seed: number) {
  const ids = new Int32Array(micro * model.blockSize);
  const targets = new Int32Array(micro * model.blockSize);
  for (let i = 0; i < ids.length; i++) {
    ids[i] = (i * 2654435761 + seed * 97) % model.vocabSize;
    targets[i] = (ids[i] * 31 + 7) % model.vocabSize;
  }
  return { inputIds: ids, targets, shape: [micro, model.blockSize] as [number, number] };
}

async function stepMs(backend: string, steps: number): Promise<number> {
  tf.setBackend(backend);
  manualSeed(1);
  const gpt = new GPT(model);
  const engine = await initialize({
    model: gpt,
    config: { train_micro_batch_size_per_gpu: micro, optimizer: { type: 'AdamW', params: { lr: 1e-3 } } },
  });
  engine.backward(() => gpt.loss(batch(0)));
  await engine.step();
  const t = performance.now();
  for (let s = 0; s < steps; s++) {
    engine.backward(() => gpt.loss(batch(s + 1)));
    await engine.step();
  }
  const ms = (performance.now() - t) / steps;
  await engine.close();
  gpt.dispose();
  return ms;
}

const steps = quick ? 3 : 10;
const cpuMs = await stepMs('cpu', quick ? 1 : 3);
const natMs = await stepMs(NATIVE_BACKEND_NAME, steps);
console.log(
  `GPT example step (micro-batch ${micro} x ${model.blockSize}): cpu ${cpuMs.toFixed(0)} ms, ${NATIVE_BACKEND_NAME} ${natMs.toFixed(1)} ms (x${(cpuMs / natMs).toFixed(1)})`,
);

if (profile) {
  for (const backend of [NATIVE_BACKEND_NAME, 'cpu']) {
    tf.setBackend(backend);
    manualSeed(1);
    const gpt = new GPT(model);
    backwardWithHooks(
      () => gpt.loss(batch(0)),
      () => {},
    ); // warm-up
    const info = await tf.profile(() => {
      backwardWithHooks(
        () => gpt.loss(batch(1)),
        () => {},
      );
    });
    const byKernel = new Map<string, number>();
    let total = 0;
    for (const k of info.kernels) {
      const ms = Number(await k.kernelTimeMs);
      byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + ms);
      total += ms;
    }
    const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 12);
    console.log(`\nprofile on ${backend}: ${total.toFixed(1)} ms in kernels`);
    for (const [name, ms] of top)
      console.log(`  ${name.padEnd(20)} ${ms.toFixed(2).padStart(9)} ms  ${((100 * ms) / total).toFixed(1)}%`);
    gpt.dispose();
  }
}
