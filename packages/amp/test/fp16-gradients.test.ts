/**
 * fp16 gradients underflow and overflow for real once the owner rounds them (the `amp` service contract,
 * the engine rounds every gradient with it before the owner sees it): loss scaling is what keeps them alive.
 */
import { describe, expect, it } from 'vitest';
import type { DynamicLossScaler } from '../src/loss-scaler.js';
import { batchOf, makeRun, tf } from './helpers.js';

const sgd = { optimizer: { type: 'SGD', params: { lr: 1e-3 } } };

/** Gradient norm of one step on a loss multiplied by `factor`. */
async function stepNorm(precision: Record<string, unknown>, factor: number) {
  const run = await makeRun(precision, { config: sgd });
  const b = batchOf(0, 8);
  run.engine.backward(() => tf.mul(run.model.loss(b), factor) as tf.Scalar);
  const r = (await run.engine.step())!;
  await run.engine.close();
  return r;
}

describe('fp16 gradients with the amp service', () => {
  it('tiny gradients flush to zero at loss scale 1 and survive at 2^16', async () => {
    const factor = 1e-9; // every gradient far below fp16's smallest subnormal (6e-8)
    const exact = await stepNorm({}, factor);
    expect(exact.gradNorm).toBeGreaterThan(0);
    const unscaled = await stepNorm({ fp16: { enabled: true, loss_scale: 1 } }, factor);
    expect(unscaled.gradNorm).toBe(0); // underflow: the whole gradient is lost
    const scaled = await stepNorm({ fp16: { enabled: true, loss_scale: 65536 } }, factor);
    expect(Math.abs(scaled.gradNorm - exact.gradNorm) / exact.gradNorm).toBeLessThan(0.01);
  });

  it('large gradients overflow fp16 at 2^20: the dynamic scaler skips and backs off until steps go through', async () => {
    const run = await makeRun({ fp16: { enabled: true, hysteresis: 2, initial_scale_power: 20 } }, { config: sgd });
    const scaler = run.amp!.scaler as DynamicLossScaler;
    const skipped: boolean[] = [];
    for (let s = 0; s < 8; s++) {
      const b = batchOf(s * 8, 8);
      run.engine.backward(() => run.model.loss(b));
      skipped.push((await run.engine.step())!.skipped);
    }
    // overflow -> hysteresis 2->1 (scale kept) -> overflow -> halve -> ... until the scaled gradients fit
    expect(skipped[0]).toBe(true);
    expect(skipped[1]).toBe(true);
    expect(skipped.at(-1)).toBe(false);
    const nSkipped = skipped.filter(Boolean).length;
    expect(run.engine.skippedSteps).toBe(nSkipped);
    expect(scaler.lossScale).toBe(2 ** (20 - (nSkipped - 1))); // one overflow absorbed by hysteresis
    expect(skipped.slice(nSkipped).every((x) => !x)).toBe(true);
    await run.engine.close();
  });
});
