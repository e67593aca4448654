/**
 * Construction-time partitioning with `zeroInit` (DeepSpeed's `with deepspeed.zero.Init(config_dict_or_path=...)`):
 * no rank ever holds the model's full weights. Run with two ranks:
 *
 *   zeroflow run --nproc-per-node 2 examples/zero-init.ts
 */
import { initialize } from '@zeroflow/core';
import { GPT } from '@zeroflow/models';
import { zeroInit } from '@zeroflow/zero-stage3';

const config = {
  train_batch_size: 8,
  optimizer: { type: 'AdamW', params: { lr: 3e-3 } },
  zero_optimization: { stage: 3, stage3_param_persistence_threshold: 1e3 },
};
// Every rank builds with the same seed and keeps only its chunk of each large parameter.
const model = zeroInit(config, () => new GPT({ vocabSize: 256, nLayer: 2, nEmbd: 64, nHead: 4, blockSize: 16 }), {
  seed: 1234,
});
const whole = model.parameters().filter((p) => p.tensor !== null && p.size > 1e3).length;
const engine = await initialize({ model, config });

const micro = engine.microBatchSize;
const T = 16;
for (let step = 0; step < 3; step++) {
  const ids = Int32Array.from({ length: micro * (T + 1) }, (_, i) => (i * 7 + step + engine.world.rank) % 256);
  const inputIds = new Int32Array(micro * T);
  const targets = new Int32Array(micro * T);
  for (let b = 0; b < micro; b++) {
    inputIds.set(ids.subarray(b * (T + 1), b * (T + 1) + T), b * T);
    targets.set(ids.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
  }
  engine.backward(() => model.loss({ inputIds, targets, shape: [micro, T] }));
  const r = await engine.step();
  console.log(
    `rank ${engine.world.rank} step ${step}: loss ${r?.loss.toFixed(4)}, large parameters held whole: ${whole}`,
  );
}
await engine.close();
