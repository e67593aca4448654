/**
 * One rank of the ZeRO benchmark (spawned by zero.ts with the PyTorch env contract: RANK, WORLD_SIZE,
 * LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ZEROFLOW_JOB_TOKEN, and ZEROFLOW_COMM for the
 * backend). Trains the GPT preset ZF_ZERO_PRESET at ZeRO stage ZF_ZERO_STAGE (AdamW, fp32, micro-batch 8)
 * for ZF_ZERO_WARMUP + ZF_ZERO_STEPS steps and prints one `@@zero <json>` line: this rank's seconds per
 * measured step, its model-state bytes (engine.memoryReport()), its RSS after a full GC and its peak RSS.
 * Run it with --expose-gc so that the RSS after GC means what it says.
 */
// First: registers the native kernels as the active tfjs backend before any model or engine exists.
import '@zeroflow/backend-native';
import { initialize, manualSeed, withParameterFactory, type ZeroFlowPlugin } from '@zeroflow/core';
import { GPT } from '@zeroflow/models';
import { syntheticBatch } from './synthetic-batch.js';
import { loadZeroPackage, PRESETS, ZERO_PREFIX, type ZeroRankResult } from './zero-shared.js';

/** PyTorch DDP's default bucket (25 MiB of fp32), used for ZeroFlow's reduce and all-gather buckets too. */
const BUCKET_ELEMENTS = (25 * 2 ** 20) / 4;

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  return v ? Number(v) : fallback;
}

/** Bytes of the process after a full collection (needs --expose-gc; without it, just the current RSS). */
function rssAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc(); // a second pass collects what the first one's finalizers released
  }
  return process.memoryUsage().rss;
}

async function main(): Promise<void> {
  const rank = envInt('RANK', 0);
  const worldSize = envInt('WORLD_SIZE', 1);
  const stage = envInt('ZF_ZERO_STAGE', 0);
  const presetName = process.env.ZF_ZERO_PRESET ?? 'tiny';
  const preset = PRESETS[presetName];
  if (!preset) throw new Error(`unknown preset ${presetName}`);
  const warmup = envInt('ZF_ZERO_WARMUP', 2);
  const steps = envInt('ZF_ZERO_STEPS', 6);
  // DeepSpeed's default; the stage-3 factory must use the same threshold as the config
  const persistence = 100_000;

  // The stage's plugin is passed explicitly: core would import it by name from this folder, where it may
  // not be a declared dependency (zero-shared.ts falls back to the workspace build).
  const plugins: ZeroFlowPlugin[] = [];
  let mod: Record<string, unknown> | null = null;
  if (stage > 0) {
    mod = await loadZeroPackage(stage);
    plugins.push(mod.plugin as ZeroFlowPlugin);
  }
  // The same seed on every rank: identical initial weights, as after stage 0's broadcast.
  manualSeed(1);
  const build = () => new GPT(preset);
  // Stage 3 partitions at construction (what a user does for a model that does not fit whole), so that
  // the peak RSS does not include a full model every rank built first and then freed.
  const factory =
    stage === 3
      ? (mod!.partitionedParameterFactory as (o: object) => Parameters<typeof withParameterFactory>[0])({
          rank,
          dpSize: worldSize,
          persistenceThreshold: persistence,
        })
      : null;
  const model = factory ? withParameterFactory(factory, build) : build();
  const params = model.namedParameters().reduce((a, [, p]) => a + p.size, 0);
  const engine = await initialize({
    model,
    plugins,
    config: {
      train_micro_batch_size_per_gpu: preset.micro,
      gradient_accumulation_steps: 1,
      optimizer: { type: 'AdamW', params: { lr: 1e-3, weight_decay: 0.1 } },
      zero_optimization: {
        stage,
        // buckets of the peer's size (PyTorch DDP's bucket_cap_mb 25 = 6.55 M fp32 elements) rather than
        // DeepSpeed's 5e8 elements, whose stage 1-3 staging alone would be 0.7 GiB per rank on `small`
        reduce_bucket_size: BUCKET_ELEMENTS,
        ...(stage === 3
          ? { stage3_param_persistence_threshold: persistence }
          : { allgather_bucket_size: BUCKET_ELEMENTS }),
      },
      steps_per_print: 1_000_000,
    },
  });
  const seconds: number[] = [];
  for (let s = 0; s < warmup + steps; s++) {
    // each rank trains on its own samples, as a data-parallel job does
    const batch = syntheticBatch(preset.micro, preset.blockSize, preset.vocabSize, s * worldSize + rank);
    const t0 = performance.now();
    engine.backward(() => model.loss(batch));
    await engine.step();
    if (s >= warmup) seconds.push((performance.now() - t0) / 1000);
  }
  const memory = engine.memoryReport();
  const rss = rssAfterGc();
  const result: ZeroRankResult = {
    rank,
    stage,
    params,
    tokensPerStep: preset.micro * preset.blockSize,
    seconds,
    memory,
    modelStateBytes: (memory.parameters ?? 0) + (memory.gradients ?? 0) + (memory.optimizer ?? 0),
    rssAfterGcBytes: rss,
    // resourceUsage().maxRSS is in kilobytes (getrusage's ru_maxrss on Linux)
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    plugins: engine.plugins.map((p) => p.name),
  };
  process.stdout.write(`${ZERO_PREFIX}${JSON.stringify(result)}\n`);
  await engine.close();
}

try {
  await main();
  process.exit(0);
} catch (err) {
  const e = err as Error;
  process.stderr.write(`[rank ${process.env.RANK}] ${e.stack ?? e.message}\n`);
  process.exit(1);
}
