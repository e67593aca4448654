/**
 * One rank of the comm benchmark (spawned by comm.ts with the PyTorch env contract: RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ZEROFLOW_JOB_TOKEN). ZF_BENCH_MODE selects:
 *  - `collectives`: times allReduce, reduceScatter, allGather and broadcast of each size in ZF_BENCH_SIZES
 *    (bytes of the full buffer, comma-separated) with backend ZF_BENCH_BACKEND;
 *  - `train`: times data-parallel training steps of the example GPT (stage 0) with that backend.
 * Prints one `@@result <json>` line per measurement with this rank's per-iteration seconds; comm.ts
 * combines the ranks (an iteration takes as long as its slowest rank).
 */
import { initDistributed, initialize, manualSeed, type ProcessGroup, type Work } from '@zeroflow/core';
import { GPT } from '@zeroflow/models';
import {
  COLLECTIVES,
  type CollectiveName,
  GPT_EXAMPLE,
  MICRO_BATCH,
  type RankResult,
  RESULT_PREFIX,
} from './comm-shared.js';
import { syntheticBatch } from './synthetic-batch.js';

function report(r: RankResult): void {
  process.stdout.write(`${RESULT_PREFIX}${JSON.stringify(r)}\n`);
}

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  return v ? Number(v) : fallback;
}

/** Registers the backend with core and returns its engine plugin. */
async function loadBackend(name: string) {
  if (name === 'shm') return (await import('@zeroflow/comm-shm')).plugin;
  if (name === 'tcp') return (await import('@zeroflow/comm-tcp')).plugin;
  throw new Error(`unknown backend ${name}`);
}

/**
 * A buffer of `n` floats. The tcp backend reduces SharedArrayBuffer-backed arrays in place in its worker,
 * skipping two staging copies (its README), so it gets those; shm copies through its segment either way.
 */
function buffer(backend: string, n: number): Float32Array {
  const b = backend === 'tcp' ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
  for (let i = 0; i < n; i += 1024) b[i] = (i % 7) + 1; // touch every page so first use pays no page faults
  return b;
}

function timeCollective(world: ProcessGroup, run: () => Work, warmup: number, iters: number): number[] {
  for (let i = 0; i < warmup; i++) run().wait();
  const seconds: number[] = [];
  for (let i = 0; i < iters; i++) {
    world.barrier().wait(); // start together, so the slowest rank's time is the collective's time
    const t0 = performance.now();
    run().wait();
    seconds.push((performance.now() - t0) / 1000);
  }
  return seconds;
}

/** Throws unless `buf` holds `expected(i)` at a spread of positions (the first, a stride, the last). */
function check(what: string, buf: Float32Array, expected: (i: number) => number): void {
  const step = Math.max(1, Math.floor(buf.length / 97));
  const positions: number[] = [buf.length - 1];
  for (let i = 0; i < buf.length; i += step) positions.push(i);
  for (const i of positions)
    if (buf[i] !== expected(i)) throw new Error(`${what}: element ${i} is ${buf[i]}, expected ${expected(i)}`);
}

/** One checked run of each collective, so that a broken backend cannot post a bandwidth. */
function verify(world: ProcessGroup, full: Float32Array, block: Float32Array): void {
  const { rank, size: n } = world;
  const total = (n * (n + 1)) / 2; // sum over ranks of (rank + 1)
  full.fill(rank + 1);
  world.allReduce(full, 'sum').wait();
  check('allReduce', full, () => total);
  full.fill(rank + 1);
  world.reduceScatter(block, full, 'sum').wait();
  check('reduceScatter', block, () => total);
  block.fill(rank + 1);
  world.allGather(full, block).wait();
  check('allGather', full, (i) => Math.floor(i / block.length) + 1);
  full.fill(rank + 1);
  world.broadcast(full, 0).wait();
  check('broadcast', full, () => 1);
}

async function collectives(backend: string): Promise<void> {
  await loadBackend(backend);
  const { world, close } = await initDistributed({ backend });
  const n = world.size;
  const warmup = envInt('ZF_BENCH_WARMUP', 2);
  for (const bytes of (process.env.ZF_BENCH_SIZES ?? String(1 << 20)).split(',').map(Number)) {
    // the full buffer, rounded down to a multiple of the rank count so that it splits into equal blocks
    const count = Math.floor(bytes / 4 / n) * n;
    // more iterations for small sizes, where the spread is wider and each one is cheap
    const iters = envInt('ZF_BENCH_ITERS', bytes <= 4 << 20 ? 20 : bytes <= 16 << 20 ? 10 : 6);
    const full = buffer(backend, count);
    const block = buffer(backend, count / n);
    verify(world, full, block);
    const runs: Record<CollectiveName, () => Work> = {
      allReduce: () => world.allReduce(full, 'sum'),
      reduceScatter: () => world.reduceScatter(block, full),
      allGather: () => world.allGather(full, block),
      broadcast: () => world.broadcast(full, 0),
    };
    for (const op of COLLECTIVES) {
      full.fill(1); // allReduce sums in place: start every collective from the same finite values
      const seconds = timeCollective(world, runs[op], warmup, iters);
      report({ kind: 'collective', rank: world.rank, op, bytes: count * 4, seconds });
    }
  }
  await close();
}

const exampleBatch = (seed: number) => syntheticBatch(MICRO_BATCH, GPT_EXAMPLE.blockSize, GPT_EXAMPLE.vocabSize, seed);

async function train(backend: string): Promise<void> {
  const worldSize = envInt('WORLD_SIZE', 1);
  const rank = envInt('RANK', 0);
  const plugins = worldSize > 1 ? [await loadBackend(backend)] : [];
  manualSeed(1);
  const model = new GPT(GPT_EXAMPLE);
  const engine = await initialize({
    model,
    plugins,
    config: {
      train_micro_batch_size_per_gpu: MICRO_BATCH,
      gradient_accumulation_steps: 1,
      optimizer: { type: 'AdamW', params: { lr: 1e-3, weight_decay: 0.1 } },
      zero_optimization: { stage: 0 },
      steps_per_print: 1_000_000,
    },
  });
  const warmup = envInt('ZF_BENCH_WARMUP', 2);
  const steps = envInt('ZF_BENCH_STEPS', 8);
  const seconds: number[] = [];
  for (let s = 0; s < warmup + steps; s++) {
    // each rank trains on its own samples, as a data-parallel job does
    const batch = exampleBatch(s * worldSize + rank);
    const t0 = performance.now();
    engine.backward(() => model.loss(batch));
    await engine.step();
    if (s >= warmup) seconds.push((performance.now() - t0) / 1000);
  }
  report({ kind: 'train', rank, tokensPerStep: MICRO_BATCH * GPT_EXAMPLE.blockSize, seconds });
  await engine.close();
  model.dispose();
}

const mode = process.env.ZF_BENCH_MODE;
const backend = process.env.ZF_BENCH_BACKEND ?? 'tcp';
try {
  if (mode === 'collectives') await collectives(backend);
  else if (mode === 'train') await train(backend);
  else throw new Error(`unknown ZF_BENCH_MODE ${mode}`);
  process.exit(0);
} catch (err) {
  const e = err as Error;
  process.stderr.write(`[rank ${process.env.RANK}] ${e.stack ?? e.message}\n`);
  process.exit(1);
}
