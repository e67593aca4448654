import { backwardWithHooks, initialize, tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { GPT } from '../src/index.js';

const cfg = { vocabSize: 128, blockSize: 64, nLayer: 6, nHead: 4, nEmbd: 64 };
const B = 4;
const ids = new Int32Array(B * cfg.blockSize).map((_, i) => (i * 37 + 11) % cfg.vocabSize);

/** Bytes of live tensors at the end of forward (what backward will need), and the loss. */
function liveBytesAfterForward(model: GPT): { bytes: number; loss: number } {
  let bytes = 0;
  const { loss } = backwardWithHooks(
    () => {
      const l = model.loss({ inputIds: ids, shape: [B, cfg.blockSize] });
      bytes = tf.memory().numBytes;
      return l;
    },
    () => {},
  );
  return { bytes, loss };
}

describe('activation checkpointing', () => {
  it('measurably cuts the memory held at the end of forward, same loss', () => {
    const model = new GPT(cfg);
    const base = tf.memory().numBytes;
    const plain = liveBytesAfterForward(model);
    model.setActivationCheckpointing(true);
    const ckpt = liveBytesAfterForward(model);
    const plainAct = plain.bytes - base;
    const ckptAct = ckpt.bytes - base;
    console.log(
      `activations at end of forward: ${(plainAct / 1e6).toFixed(2)} MB plain, ${(ckptAct / 1e6).toFixed(2)} MB checkpointed`,
    );
    expect(ckpt.loss).toBeCloseTo(plain.loss, 5);
    expect(ckptAct).toBeLessThan(0.5 * plainAct);
  });

  it('is switched on by the activation_checkpointing config section', async () => {
    const model = new GPT(cfg);
    expect(model.activationCheckpointing).toBe(false);
    await initialize({ model, config: { train_micro_batch_size_per_gpu: 1, activation_checkpointing: {} } });
    expect(model.activationCheckpointing).toBe(true);
    const err = await initialize({
      model: new GPT(cfg),
      config: { train_micro_batch_size_per_gpu: 1, activation_checkpointing: { cpu_checkpointing: true } },
    }).catch((e) => e);
    expect(String(err)).toMatch(/activation_checkpointing\.cpu_checkpointing/);
  });
});
