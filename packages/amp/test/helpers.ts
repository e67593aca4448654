/** Shared pieces of the engine tests: the GPT tiny model, a deterministic batch stream, a 16-bit-gradient owner. */
import { type Engine, initialize, manualSeed, tf, type ZeroFlowPlugin } from '@zeroflow/core';
import { GPT } from '@zeroflow/models';
import { type AmpOptions, type AmpPlugin, createPlugin } from '../src/plugin.js';

export const T = 16;
export const tinyGpt = () => new GPT({ vocabSize: 256, blockSize: T, nLayer: 2, nHead: 4, nEmbd: 64 });

/** Sequence `s` of a fixed synthetic corpus with learnable structure. */
export function sample(s: number): Int32Array {
  const x = new Int32Array(T + 1);
  for (let t = 0; t <= T; t++) x[t] = (s * 131 + t * 17 + ((s * t) % 7)) % 256;
  return x;
}

export function batchOf(first: number, size: number) {
  const inputIds = new Int32Array(size * T);
  const targets = new Int32Array(size * T);
  for (let b = 0; b < size; b++) {
    const seq = sample(first + b);
    inputIds.set(seq.subarray(0, T), b * T);
    targets.set(seq.subarray(1), b * T);
  }
  return { inputIds, targets, shape: [size, T] as [number, number] };
}

export const baseConfig = {
  train_micro_batch_size_per_gpu: 8,
  gradient_accumulation_steps: 1,
  optimizer: { type: 'AdamW', params: { lr: 3e-3, weight_decay: 0.01 } },
};

export interface Run {
  engine: Engine;
  model: GPT;
  amp: AmpPlugin | null;
}

/** A seeded GPT tiny engine; `precision` adds fp16/bf16 to the config and the amp plugin from src. */
export async function makeRun(
  precision: Record<string, unknown> = {},
  opts: { amp?: AmpOptions; config?: Record<string, unknown> } = {},
): Promise<Run> {
  manualSeed(7);
  const model = tinyGpt();
  const usesAmp = Object.values(precision).some((v) => (v as { enabled?: boolean }).enabled);
  const amp = usesAmp ? createPlugin(opts.amp) : null;
  const plugins: ZeroFlowPlugin[] = amp ? [amp] : [];
  const engine = await initialize({ model, config: { ...baseConfig, ...opts.config, ...precision }, plugins });
  return { engine, model, amp };
}

/** Trains `steps` steps cycling over 4 fixed batches (memorizable, so the loss falls fast); returns each loss. */
export async function train(run: Run, steps: number, first = 0): Promise<number[]> {
  const losses: number[] = [];
  for (let s = first; s < first + steps; s++) {
    const b = batchOf((s % 4) * 8, 8);
    run.engine.backward(() => run.model.loss(b));
    const r = await run.engine.step();
    if (r) losses.push(r.loss);
    // let vitest's worker RPC through: a long run of synchronous steps otherwise starves it
    await new Promise((resolve) => setImmediate(resolve));
  }
  return losses;
}

/** Loss over the 4 training batches through the engine's parameter access (16-bit runs see rounded weights). */
export function trainingSetLoss(run: Run): number {
  const b = batchOf(0, 32);
  return run.engine.evaluate(() => run.model.loss(b));
}

export { tf };
