/**
 * The job every parity fixture trains: GPT tiny (vocab 256, 16 tokens, 2 layers of 64), a fixed global batch
 * of 8 sequences per step split by (micro-step, rank) as a data-parallel sampler does, AdamW, clipping 0.5.
 * Any world size and accumulation that divide the batch train on the same data, so runs compare exactly.
 * Imported by the rank processes themselves (no vitest here): `@zeroflow/test-utils/tiny-job`.
 */
import {
  type DistributedContext,
  type Engine,
  initDistributed,
  LoggedProcessGroup,
  type ZeroFlowPlugin,
} from '@zeroflow/core';

/** Sequences per optimizer step, over all ranks and micro-steps. */
export const TINY_GLOBAL_BATCH = 8;
/** Tokens per sequence. */
export const TINY_SEQ_LEN = 16;
/** The model's sizes (GPT's config). */
export const TINY_GPT = { vocabSize: 256, blockSize: TINY_SEQ_LEN, nLayer: 2, nHead: 4, nEmbd: 64 };

/** The engine config of the job: `gas` micro-steps per step, `zero` keys over stage/bucket, `extra` top-level keys. */
export function tinyJobConfig(
  gas: number,
  zero: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    train_batch_size: TINY_GLOBAL_BATCH,
    gradient_accumulation_steps: gas,
    gradient_clipping: 0.5,
    optimizer: { type: 'AdamW', params: { lr: 3e-3, weight_decay: 0.01 } },
    zero_optimization: { reduce_bucket_size: 20000, ...zero },
    ...extra,
  };
}

function sample(s: number): Int32Array {
  const x = new Int32Array(TINY_SEQ_LEN + 1);
  for (let t = 0; t <= TINY_SEQ_LEN; t++) x[t] = (s * 131 + t * 17 + ((s * t) % 7)) % 256;
  return x;
}

/** This rank's micro-batch `microStep` of optimizer step `step`: sequences (step, microStep, rank)-indexed. */
export function tinyMicroBatch(
  step: number,
  microStep: number,
  gas: number,
  rank: number,
  worldSize: number,
): { inputIds: Int32Array; targets: Int32Array; shape: [number, number] } {
  const micro = TINY_GLOBAL_BATCH / gas / worldSize;
  const T = TINY_SEQ_LEN;
  const inputIds = new Int32Array(micro * T);
  const targets = new Int32Array(micro * T);
  for (let b = 0; b < micro; b++) {
    const seq = sample(step * TINY_GLOBAL_BATCH + (microStep * worldSize + rank) * micro + b);
    inputIds.set(seq.subarray(0, T), b * T);
    targets.set(seq.subarray(1), b * T);
  }
  return { inputIds, targets, shape: [micro, T] };
}

/**
 * Every parameter's full fp32 value by name, in model order: the owner's where it keeps them apart (ZeRO-3
 * shards gathered, amp's fp32 masters; a collective, so every rank calls it), else the tensor's.
 */
export async function fullWeights(engine: Engine): Promise<Record<string, number[]>> {
  const full = (await engine.gradientOwner.fullParameters?.()) ?? {};
  return Object.fromEntries(engine.parameters.map((p) => [p.name, Array.from(full[p.name] ?? p.param.values())]));
}

/**
 * What the engine does when `comms_logger.enabled`, done by hand so a test reads every collective's bytes:
 * join the world, then offer it wrapped in a LoggedProcessGroup (`logged()` once set up).
 */
export function loggedCommPlugin(rank: number): {
  plugin: ZeroFlowPlugin;
  logged: () => LoggedProcessGroup | undefined;
} {
  let joined: DistributedContext | undefined;
  let logged: LoggedProcessGroup | undefined;
  const plugin: ZeroFlowPlugin = {
    name: 'logged-comm',
    version: '0.1.0',
    coreVersion: '^0.1.0',
    provides: ['comm'],
    async setup(ctx) {
      joined = await initDistributed({ backend: process.env.ZEROFLOW_COMM ?? 'tcp' });
      logged = new LoggedProcessGroup(joined.world, { prof_all: true, rank });
      ctx.provideService('comm', logged);
    },
    hooks: {
      async teardown() {
        await joined?.close();
      },
    },
  };
  return { plugin, logged: () => logged };
}
