import { initialize, Lamb, manualSeed } from '@zeroflow/core';
import { GPT } from '@zeroflow/models';
import { describe, expect, it } from 'vitest';

function tinyModel(): GPT {
  manualSeed(1);
  return new GPT({ vocabSize: 32, blockSize: 8, nLayer: 1, nHead: 2, nEmbd: 16 });
}

const base = { train_batch_size: 2, optimizer: { type: 'AdamW', params: { lr: 1e-3 } } };

describe('zero_optimization keys @zeroflow/zero-stage2 does not implement are errors, not silently ignored', () => {
  for (const [key, value] of [
    ['round_robin_gradients', true],
    ['contiguous_gradients', false],
    ['use_multi_rank_bucket_allreduce', false],
    ['offload_optimizer', { device: 'nvme', nvme_path: '/tmp' }],
  ] as const) {
    it(`${key}: ${JSON.stringify(value)}`, async () => {
      const config = { ...base, zero_optimization: { stage: 2, [key]: value } };
      const err = await initialize({ model: tinyModel(), config }).catch((e: unknown) => e);
      // nvme offload asks core for @zeroflow/offload-nvme first, which may not be installed
      if (key === 'offload_optimizer' && (err as Error).name !== 'ConfigError') {
        expect(String(err)).toMatch(/offload-nvme/);
        return;
      }
      // by name: the plugin's copy of core and the test's may be different module instances under vitest
      expect((err as Error).name).toBe('ConfigError');
      expect(String((err as Error).message)).toContain(`zero_optimization.${key}`);
      expect(String((err as Error).message)).toContain('@zeroflow/zero-stage2');
    });
  }

  it('Lamb is rejected: its trust ratio needs whole tensors', async () => {
    const config = { train_batch_size: 2, zero_optimization: { stage: 2 } };
    const optimizer = new Lamb([{ weight_decay: 0.01 }, { weight_decay: 0 }], { lr: 1e-3 });
    await expect(initialize({ model: tinyModel(), config, optimizer })).rejects.toThrow(/Lamb.*whole tensors/s);
  });

  it('honored and stage-3-only keys are accepted; one process needs no comm', async () => {
    const config = {
      ...base,
      zero_optimization: {
        stage: 2,
        reduce_bucket_size: 1000,
        allgather_bucket_size: 1000,
        overlap_comm: true,
        reduce_scatter: true,
        stage3_prefetch_bucket_size: 123,
        sub_group_size: 1000,
        // checkpoints always reshard across data-parallel sizes, which is DeepSpeed's elastic checkpoint
        elastic_checkpoint: true,
      },
    };
    const engine = await initialize({ model: tinyModel(), config });
    expect(engine.plugins.map((p) => p.name)).toEqual(['@zeroflow/zero-stage2']);
    const inputIds = new Int32Array(16).fill(3);
    engine.backward(() => (engine.model as GPT).loss({ inputIds, targets: inputIds, shape: [2, 8] }));
    const r = await engine.step();
    expect(r?.skipped).toBe(false);
    expect(Number.isFinite(r?.gradNorm)).toBe(true);
    await engine.close();
  });
});
