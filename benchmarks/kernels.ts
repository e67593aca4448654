/**
 * Kernel-level measurements of the native CPU backend (@zeroflow/backend-native), all ratios against baselines
 * measured in the same run:
 *  1. matmul GFLOP/s through tfjs on `zeroflow-cpu` and on tfjs's `cpu`, against the raw native sgemm;
 *  2. the per-kernel profile (tf.profile) of one GPT forward+backward: `cpu` backend, `zeroflow-cpu` with its
 *     math kernels off (ZEROFLOW_NATIVE_MATH=0, a child process: the state before issue 6) and `zeroflow-cpu`;
 *     top 10 kernels with ms and share (nested `customGrad` scopes are not counted: their kernels are);
 *  3. Adam, M params/s: native kernel vs the memcpy bound (28 bytes moved per param) vs tfjs's own Adam;
 *  4. fp32 <-> fp16/bf16 conversions, GB/s: native vs core's TS loops.
 * Writes the `kernels` section of RESULTS.md. Usage: node --import tsx kernels.ts [--quick] (quick: < 1 min)
 */
import { spawnSync } from 'node:child_process';
import { nativeBackendStatus, nativeFlatKernels, nativeKernelsAddon } from '@zeroflow/backend-native';
import { backwardWithHooks, halfKernels, manualSeed, narrow, setHalfKernels, tf, widen } from '@zeroflow/core';
import { GPT, type GPTConfig } from '@zeroflow/models';
import { machineLine, stats, writeJson, writeSection } from './results-file.js';
import { syntheticBatch } from './synthetic-batch.js';

const quick = process.argv.includes('--quick');
const profileChild = process.argv.includes('--profile-json');
const NATIVE = 'zeroflow-cpu';
const addon = nativeKernelsAddon();
const status = nativeBackendStatus();

// the PyTorch peer's tiny preset (4.24 M params); --quick profiles the smaller example model
const GPT_PRESET: GPTConfig & { micro: number; blockSize: number } = quick
  ? { vocabSize: 2048, blockSize: 64, nLayer: 4, nHead: 4, nEmbd: 128, micro: 8 }
  : { vocabSize: 4096, blockSize: 128, nLayer: 4, nHead: 4, nEmbd: 256, micro: 8 };
const presetName = quick ? 'example (8x64)' : 'peer-tiny (8x128)';

type Profile = { total: number; top: [string, number][] };

async function profileStep(backend: string): Promise<Profile> {
  tf.setBackend(backend);
  manualSeed(1);
  const p = GPT_PRESET;
  const gpt = new GPT(p);
  const batch = (seed: number) => syntheticBatch(p.micro, p.blockSize, p.vocabSize, seed);
  const step = (seed: number) =>
    backwardWithHooks(
      () => gpt.loss(batch(seed)),
      () => {},
    );
  step(0); // warm-up
  const info = await tf.profile(() => {
    step(1);
  });
  const byKernel = new Map<string, number>();
  let total = 0;
  for (const k of info.kernels) {
    if (k.name === 'unnamed scope') continue; // a customGrad scope: its kernels are listed on their own
    const ms = Number(await k.kernelTimeMs);
    byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + ms);
    total += ms;
  }
  gpt.dispose();
  return { total, top: [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 10) };
}

if (profileChild) {
  // child mode: one profile on the native backend as configured by the environment, as JSON on stdout
  console.log(JSON.stringify(await profileStep(NATIVE)));
  process.exit(0);
}
if (!addon || !status?.registered) {
  console.log(`native kernels unavailable (${status?.reason}); nothing to measure`);
  process.exit(0);
}

function timeIt(fn: () => void, reps: number, warmup = 1): number[] {
  for (let i = 0; i < warmup; i++) fn();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    fn();
    out.push((performance.now() - t) / 1000);
  }
  return out;
}
const fmtStats = (xs: number[], digits = 1) => {
  const s = stats(xs);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
};

// ------------------------------------------------------------------------------------------ 1. matmul
const matmulRows: string[] = [];
const json: Record<string, unknown> = {};
for (const n of quick ? [256, 512] : [512, 1024]) {
  const flop = 2 * n ** 3;
  const a = tf.randomUniform([n, n]);
  const b = tf.randomUniform([n, n]);
  const gf = (backend: string, reps: number) => {
    tf.setBackend(backend);
    // not inside tf.tidy returning the data: tidy walks every element of a returned typed array
    const once = () => {
      const c = tf.matMul(a, b);
      c.dataSync();
      c.dispose();
    };
    return timeIt(once, reps).map((s) => flop / s / 1e9);
  };
  const nat = gf(NATIVE, quick ? 5 : 10);
  const cpu = gf('cpu', n >= 1024 ? 1 : quick ? 1 : 2);
  tf.setBackend(NATIVE);
  const av = a.dataSync() as Float32Array;
  const bv = b.dataSync() as Float32Array;
  const c = new Float32Array(n * n);
  const raw = timeIt(() => addon.sgemmBatched(av, bv, c, 1, n, n, n, false, false), quick ? 5 : 10).map(
    (s) => flop / s / 1e9,
  );
  // the opt-in bf16 compute precision (Intel AMX), raw, when this machine has it
  const bf16 = status.info?.amxBf16
    ? timeIt(() => addon.sgemmBatchedBf16(av, bv, c, 1, n, n, n, false, false), quick ? 5 : 10).map(
        (s) => flop / s / 1e9,
      )
    : null;
  tf.dispose([a, b]);
  const row = `| ${n} | ${fmtStats(raw)} | ${fmtStats(nat)} | ${(stats(nat).median / stats(raw).median).toFixed(2)} | ${fmtStats(cpu, 2)} | ${(stats(nat).median / stats(cpu).median).toFixed(0)} | ${bf16 ? `${fmtStats(bf16)} (x${(stats(bf16).median / stats(raw).median).toFixed(1)})` : 'no AMX'} |`;
  console.log(row);
  matmulRows.push(row);
  json[`matmul${n}`] = {
    raw: stats(raw).median,
    native: stats(nat).median,
    cpu: stats(cpu).median,
    bf16Amx: bf16 ? stats(bf16).median : null,
  };
}

// ------------------------------------------------------------------------------------------ 2. profile
const before = spawnSync(
  process.execPath,
  ['--import', 'tsx', import.meta.filename, '--profile-json', ...(quick ? ['--quick'] : [])],
  {
    encoding: 'utf8',
    env: { ...process.env, ZEROFLOW_NATIVE_MATH: '0' },
    cwd: import.meta.dirname,
  },
);
const beforeProfile: Profile | null =
  before.status === 0 ? JSON.parse(before.stdout.trim().split('\n').pop() ?? 'null') : null;
const cpuProfile = await profileStep('cpu');
const nativeProfile = await profileStep(NATIVE);
const profileTable = (label: string, p: Profile | null) =>
  p
    ? `**${label}**: ${p.total.toFixed(0)} ms in kernels\n\n| kernel | ms | share |\n|---|---|---|\n${p.top
        .map(([k, ms]) => `| ${k} | ${ms.toFixed(1)} | ${((100 * ms) / p.total).toFixed(1)}% |`)
        .join('\n')}`
    : `**${label}**: not measured (${before.stderr.slice(-200)})`;
for (const [label, p] of [
  ['cpu', cpuProfile],
  ['before', beforeProfile],
  ['after', nativeProfile],
] as const)
  console.log(
    label,
    p?.total.toFixed(0),
    'ms',
    p?.top
      .slice(0, 5)
      .map(([k, ms]) => `${k} ${ms.toFixed(0)}`)
      .join(', '),
  );
json.profile = { cpu: cpuProfile, before: beforeProfile, after: nativeProfile };

// ------------------------------------------------------------------------------------------ 3. Adam
const nAdam = quick ? 4e6 : 16e6;
// memcpy over as many bytes as Adam's four buffers hold (out of cache), both buffers touched first (no zero page)
const big = new Float32Array(nAdam * 4).fill(1.5);
const bigDst = new Float32Array(nAdam * 4).fill(0);
const memcpy = timeIt(() => bigDst.set(big), quick ? 5 : 10, 2).map((s) => big.byteLength / s / 1e9);
// Adam reads params, grads, exp_avg, exp_avg_sq (16 bytes) and writes params, exp_avg, exp_avg_sq (12 bytes)
// per parameter; a memcpy of B bytes moves 2B. Bound in params/s = 2 * memcpy bytes/s / 28.
const boundMps = (2 * stats(memcpy).median * 1e9) / 28 / 1e6;
const params = new Float32Array(nAdam).map((_, i) => Math.sin(i));
const grads = new Float32Array(nAdam).map((_, i) => Math.cos(i) * 0.01);
const m = new Float32Array(nAdam);
const v = new Float32Array(nAdam);
const flat = nativeFlatKernels(addon)!;
let step = 0;
const adamNative = timeIt(
  () => flat.adam(params, grads, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.01, ++step, true, true),
  quick ? 5 : 10,
  2,
).map((s) => nAdam / s / 1e6);
tf.setBackend(NATIVE);
const tfVar = tf.variable(tf.tensor1d(params));
const tfGrad = tf.tensor1d(grads);
const tfAdam = tf.train.adam(1e-3, 0.9, 0.999, 1e-8);
const adamTf = timeIt(() => tfAdam.applyGradients([{ name: tfVar.name, tensor: tfGrad }]), quick ? 2 : 4, 1).map(
  (s) => nAdam / s / 1e6,
);
tfAdam.dispose();
tf.dispose([tfVar, tfGrad]);
const adamLine = `| ${nAdam / 1e6} M | ${fmtStats(adamNative, 0)} | ${boundMps.toFixed(0)} (memcpy ${fmtStats(memcpy, 2)} GB/s) | ${((100 * stats(adamNative).median) / boundMps).toFixed(0)}% | ${fmtStats(adamTf, 0)} | ${(stats(adamNative).median / stats(adamTf).median).toFixed(1)} |`;
console.log(adamLine);
json.adam = { native: stats(adamNative).median, bound: boundMps, tfjs: stats(adamTf).median };

// ------------------------------------------------------------------------------------------ 4. fp16/bf16
const nConv = quick ? 4e6 : 16e6;
const f32 = new Float32Array(nConv).map((_, i) => Math.sin(i) * 1000);
const u16 = new Uint16Array(nConv);
const back = new Float32Array(nConv);
const convRows: string[] = [];
const native16 = halfKernels();
for (const format of ['fp16', 'bf16'] as const) {
  const gbs = (fn: () => void) => timeIt(fn, quick ? 3 : 6, 1).map((s) => (nConv * 6) / s / 1e9); // 4 + 2 bytes
  const nn = gbs(() => narrow(f32, format, u16));
  const nw = gbs(() => widen(u16, format, back));
  setHalfKernels(null);
  const tn = gbs(() => narrow(f32, format, u16));
  const tw = gbs(() => widen(u16, format, back));
  setHalfKernels(native16);
  const row = `| ${format} | ${fmtStats(nn, 2)} | ${fmtStats(tn, 2)} | ${(stats(nn).median / stats(tn).median).toFixed(1)} | ${fmtStats(nw, 2)} | ${fmtStats(tw, 2)} | ${(stats(nw).median / stats(tw).median).toFixed(1)} |`;
  console.log(row);
  convRows.push(row);
  json[format] = {
    narrowNative: stats(nn).median,
    narrowTs: stats(tn).median,
    widenNative: stats(nw).median,
    widenTs: stats(tw).median,
  };
}

const command = `node --import tsx kernels.ts${quick ? ' --quick' : ''}`;
writeJson('kernels', [json], { machine: machineLine(), command });
writeSection(
  'kernels',
  `## Native CPU kernels (@zeroflow/backend-native)

Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}. Native build: ${JSON.stringify(status.info)}.
Command: \`${command}\` (in benchmarks/; median (min-max) of repeats; a shared 2-core box, so compare only
numbers within one run).

Matmul, float32, square n x n, GFLOP/s:

| n | raw sgemm (addon) | tfjs on \`zeroflow-cpu\` | tfjs / raw | tfjs on \`cpu\` | zeroflow-cpu / cpu | raw bf16 on AMX (opt-in; x raw fp32) |
|---|---|---|---|---|---|---|
${matmulRows.join('\n')}

Per-kernel profile (\`tf.profile\`) of one forward+backward of the GPT ${presetName}, micro-batch ${GPT_PRESET.micro}: tfjs's \`cpu\`
backend; \`zeroflow-cpu\` with ZEROFLOW_NATIVE_MATH=0 (matmul, binary ops, exp, softmax, transpose native:
the state before issue 6); \`zeroflow-cpu\` with every native kernel. Top 10:

${profileTable('cpu', cpuProfile)}

${profileTable('zeroflow-cpu, math kernels off (before)', beforeProfile)}

${profileTable('zeroflow-cpu (after)', nativeProfile)}

Adam (AdamW mode), M params/s over one flat buffer. The bound is memory traffic: 28 bytes per parameter
(16 read, 12 written) at the memcpy rate measured here (\`Float32Array.prototype.set\`, ${(big.byteLength / 2 ** 20).toFixed(0)} MiB; a copy
of B bytes moves 2B). tfjs's Adam is \`tf.train.adam\` on one variable on the same backend.

| params | native | memcpy bound | native / bound | tfjs Adam | native / tfjs |
|---|---|---|---|---|---|
${adamLine}

fp32 <-> 16-bit conversions of ${nConv / 1e6} M values, GB/s (4 + 2 bytes per value), native (${status.info?.halfIsa ?? '?'}) vs core's TS loops:

| format | narrow native | narrow TS | x | widen native | widen TS | x |
|---|---|---|---|---|---|---|
${convRows.join('\n')}`,
);
