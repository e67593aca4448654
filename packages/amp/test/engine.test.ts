import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  executionContext,
  initialize,
  materializedAccess,
  type Parameter,
  roundInPlace,
  withExecutionContext,
} from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import type { DynamicLossScaler } from '../src/loss-scaler.js';
import type { AmpPlugin } from '../src/plugin.js';
import { baseConfig, batchOf, makeRun, type Run, tf, tinyGpt, train, trainingSetLoss } from './helpers.js';

const STEPS = 20;

function usedWeights(run: Run, p: Parameter): Float32Array {
  return run.engine.inference(() => {
    const [w] = executionContext().access.acquire([p], run.model);
    const v = (w.dataSync() as Float32Array).slice();
    w.dispose();
    return v;
  });
}

describe('GPT tiny trained with amp', () => {
  it('core loads @zeroflow/amp by name for fp16 and bf16 configs', async () => {
    for (const precision of [{ fp16: { enabled: true } }, { bf16: { enabled: true } }]) {
      const model = tinyGpt();
      const engine = await initialize({ model, config: { ...baseConfig, ...precision } });
      const amp = engine.plugins.find((p) => p.name === '@zeroflow/amp') as AmpPlugin | undefined;
      expect(amp?.provides).toEqual(['loss-scaling', 'parameter-storage', 'amp']);
      expect(amp?.format).toBe('fp16' in precision ? 'fp16' : 'bf16');
      expect(amp?.hooks?.lossScale?.()).toBe('fp16' in precision ? 65536 : 1);
      const b = batchOf(0, 8);
      engine.backward(() => model.loss(b));
      expect((await engine.step())?.skipped).toBe(false);
      await engine.close();
    }
  });

  it('fp16 (dynamic scale) and bf16 reach the fp32 loss within 2%', async () => {
    const fp32 = await makeRun();
    const fp16 = await makeRun({ fp16: { enabled: true } });
    const fp16Grads = await makeRun({ fp16: { enabled: true } });
    const bf16 = await makeRun({ bf16: { enabled: true } });
    const runs = { fp32, fp16, fp16Grads, bf16 };
    const start = trainingSetLoss(fp32);
    const final: Record<string, number> = {};
    for (const [name, run] of Object.entries(runs)) {
      await train(run, STEPS);
      final[name] = trainingSetLoss(run);
    }
    expect(final.fp32).toBeLessThan(start * 0.8); // it learned something
    for (const name of ['fp16', 'fp16Grads', 'bf16']) {
      expect(Math.abs(final[name] - final.fp32) / final.fp32, `${name}: ${final[name]} vs ${final.fp32}`).toBeLessThan(
        0.02,
      );
    }
    // the rounding is really on: 16-bit runs do not reproduce fp32 bit for bit
    expect(final.bf16).not.toBe(final.fp32);
    expect(final.fp16).not.toBe(final.fp32);
    const scaler = fp16Grads.amp!.scaler as DynamicLossScaler;
    expect(scaler.skippedSteps).toBe(fp16Grads.engine.skippedSteps);
    for (const r of Object.values(runs)) await r.engine.close();
  });

  it('the forward pass sees the 16-bit rounding of the fp32 master weights', async () => {
    const run = await makeRun({ bf16: { enabled: true } });
    await train(run, 2);
    const p = run.model.parameters()[2];
    const master = p.values();
    const used = usedWeights(run, p);
    expect(Array.from(used)).toEqual(Array.from(roundInPlace(master.slice(), 'bf16')));
    expect(Array.from(used)).not.toEqual(Array.from(master)); // Adam moved the masters off the bf16 grid

    // The whole forward: the engine's loss equals a plain fp32 model's loss whose weights ARE the rounded ones.
    const plain = tinyGpt();
    plain.parameters().forEach((q, i) => {
      q.load(roundInPlace(run.model.parameters()[i].values(), 'bf16'));
    });
    const b = batchOf(4242, 4);
    const viaEngine = run.engine.evaluate(() => run.model.loss(b));
    const viaRounded = withExecutionContext({ access: materializedAccess, capture: null }, () =>
      tf.tidy(() => plain.loss(b).dataSync()[0]),
    );
    expect(viaEngine).toBe(viaRounded);
    const viaMaster = withExecutionContext({ access: materializedAccess, capture: null }, () =>
      tf.tidy(() => run.model.loss(b).dataSync()[0]),
    );
    expect(viaEngine).not.toBe(viaMaster);
    await run.engine.close();
  });

  it('an injected overflow skips the step (weights, optimizer and schedule untouched) and halves the scale', async () => {
    const run = await makeRun(
      { fp16: { enabled: true, hysteresis: 1 } },
      { config: { scheduler: { type: 'WarmupLR', params: { warmup_num_steps: 10 } } } },
    );
    await train(run, 2);
    const scaler = run.amp!.scaler as DynamicLossScaler;
    expect(scaler.lossScale).toBe(65536);
    const before = run.model.parameters().map((p) => p.values());
    const lrBefore = run.engine.getLr();
    const b = batchOf(999, 8);
    run.engine.backward(() => tf.mul(run.model.loss(b), 1e38) as tf.Scalar); // inf loss: inf/NaN gradients
    const r = await run.engine.step();
    expect(r!.skipped).toBe(true);
    expect(run.engine.skippedSteps).toBe(1);
    expect(run.engine.globalSteps).toBe(3); // skipped steps count, as in DeepSpeed
    expect(scaler.lossScale).toBe(32768);
    expect(scaler.skippedSteps).toBe(1);
    expect(run.engine.getLr()).toEqual(lrBefore);
    run.model.parameters().forEach((p, i) => {
      expect(p.values()).toEqual(before[i]);
    });
    // training goes on at the new scale
    const [next] = await train(run, 1, 3);
    expect(Number.isFinite(next)).toBe(true);
    expect(run.engine.skippedSteps).toBe(1);
    expect(run.engine.getLr()).not.toEqual(lrBefore);
    await run.engine.close();
  });

  it('default hysteresis 2: the first overflow only spends hysteresis; the loss scaler survives a checkpoint', async () => {
    const run = await makeRun({ fp16: { enabled: true } });
    const b = batchOf(5, 8);
    run.engine.backward(() => tf.mul(run.model.loss(b), 1e38) as tf.Scalar);
    await run.engine.step();
    const scaler = run.amp!.scaler as DynamicLossScaler;
    expect([scaler.lossScale, scaler.hysteresisLeft, scaler.skippedSteps]).toEqual([65536, 1, 1]);
    const saved = run.amp!.hooks!.stateDict!();
    const other = await makeRun({ fp16: { enabled: true } });
    other.amp!.hooks!.loadStateDict!(JSON.parse(JSON.stringify(saved)));
    expect((other.amp!.scaler as DynamicLossScaler).stateDict()).toEqual(scaler.stateDict());
    await run.engine.close();
    await other.engine.close();
  });

  it('a checkpoint restores the scaler and the 16-bit copies follow the restored masters', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'amp-ckpt-'));
    try {
      const a = await makeRun({ fp16: { enabled: true, hysteresis: 1 } });
      await train(a, 2);
      a.engine.backward(() => tf.mul(a.model.loss(batchOf(0, 8)), 1e38) as tf.Scalar);
      await a.engine.step();
      await a.engine.saveCheckpoint(dir);
      const b = await makeRun({ fp16: { enabled: true, hysteresis: 1 } });
      const p = b.model.parameters()[3];
      usedWeights(b, p); // builds b's 16-bit copies from its initial weights, not a's trained ones
      await b.engine.loadCheckpoint(dir);
      expect(b.amp!.scaler!.stateDict()).toEqual(a.amp!.scaler!.stateDict());
      expect(b.amp!.scaler!.lossScale).toBe(32768);
      expect(Array.from(usedWeights(b, p))).toEqual(Array.from(roundInPlace(p.values(), 'fp16')));
      expect(Array.from(usedWeights(b, p))).toEqual(Array.from(usedWeights(a, a.model.parameters()[3])));
      await a.engine.close();
      await b.engine.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('static loss_scale multiplies the backward and is divided out: same step at 1024 and 4096', async () => {
    // (at scale 1 the smallest fp16 gradients underflow: that difference is what loss scaling is for)
    const a = await makeRun({ fp16: { enabled: true, loss_scale: 1024 } });
    const c = await makeRun({ fp16: { enabled: true, loss_scale: 4096 } });
    expect(a.amp!.hooks!.lossScale!()).toBe(1024);
    const [la] = await train(a, 2);
    const [lc] = await train(c, 2);
    expect(la).toBe(lc);
    // powers of two scale exactly except where a scaled gradient falls in fp16's subnormal range (it keeps fewer
    // bits at the smaller scale), so the weights agree closely but not bit for bit
    let num = 0;
    let den = 0;
    a.model.parameters().forEach((p, i) => {
      const x = p.values();
      const y = c.model.parameters()[i].values();
      for (let j = 0; j < x.length; j++) {
        num += (x[j] - y[j]) ** 2;
        den += y[j] ** 2;
      }
    });
    expect(Math.sqrt(num / den)).toBeLessThan(1e-4);
    await a.engine.close();
    await c.engine.close();
  });
});
