import type { Fp16Config } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { DynamicLossScaler, LossScaleAtMinimumError, StaticLossScaler } from '../src/loss-scaler.js';
import { createLossScaler } from '../src/plugin.js';

type Row = [step: 'O' | 'C', scale: number, hysteresis: number, skipped: number];

/** Feeds the steps and checks the state after each one (expected values worked out from DeepSpeed's update_scale). */
function trace(s: DynamicLossScaler, rows: Row[]): void {
  rows.forEach(([step, scale, hysteresis, skipped], i) => {
    s.update(step === 'O');
    expect([s.lossScale, s.hysteresisLeft, s.skippedSteps], `after step ${i} (${step})`).toEqual([
      scale,
      hysteresis,
      skipped,
    ]);
  });
}

const base = { initScale: 2 ** 16, scaleWindow: 3, minScale: 1, hysteresis: 2, consecutiveHysteresis: false };

describe('DynamicLossScaler (DeepSpeed update_scale)', () => {
  it('hysteresis delays the halving; the hysteresis refills only when the scale doubles', () => {
    const s = new DynamicLossScaler(base);
    expect(s.lossScale).toBe(65536);
    trace(s, [
      ['O', 65536, 1, 1], // hysteresis 2 -> 1, scale kept
      ['O', 32768, 1, 2], // hysteresis used up: halve (and no refill)
      ['C', 32768, 1, 2], // stable interval 0
      ['C', 32768, 1, 2], // 1
      ['C', 32768, 1, 2], // 2
      ['C', 65536, 2, 2], // 3 = window: double, refill hysteresis
      ['O', 65536, 1, 3],
      ['C', 65536, 1, 3], // a clean step does not refill without consecutive_hysteresis ...
      ['O', 32768, 1, 4], // ... so this overflow halves at once
      ['C', 32768, 1, 4],
      ['C', 32768, 1, 4],
      ['C', 32768, 1, 4],
      ['C', 65536, 2, 4], // stable 3
      ['C', 65536, 2, 4],
      ['C', 65536, 2, 4],
      ['C', 131072, 2, 4], // stable 6: doubles again every window
    ]);
    expect(s.iteration).toBe(16);
  });

  it('consecutive_hysteresis refills the hysteresis on every clean step', () => {
    const s = new DynamicLossScaler({ ...base, consecutiveHysteresis: true });
    trace(s, [
      ['O', 65536, 1, 1],
      ['C', 65536, 2, 1], // refilled
      ['O', 65536, 1, 2], // absorbed again
      ['O', 32768, 1, 3],
      ['O', 16384, 1, 4], // halving does not refill
      ['C', 16384, 2, 4],
    ]);
  });

  it('without overflows, the scale first doubles on the (window + 1)-th step, then every window', () => {
    const s = new DynamicLossScaler({ ...base, scaleWindow: 2, hysteresis: 1 });
    trace(s, [
      ['C', 65536, 1, 0],
      ['C', 65536, 1, 0],
      ['C', 131072, 1, 0],
      ['C', 131072, 1, 0],
      ['C', 262144, 1, 0],
    ]);
  });

  it('never goes below min_loss_scale; an overflow AT the minimum throws by default (DeepSpeed ZeRO)', () => {
    const s = new DynamicLossScaler({ ...base, initScale: 3, minScale: 2, hysteresis: 1 });
    trace(s, [['O', 2, 1, 1]]); // max(3 / 2, 2)
    expect(() => s.update(true)).toThrow(LossScaleAtMinimumError);
    expect(s.lossScale).toBe(2);
    expect(s.skippedSteps).toBe(1); // the failed update changed nothing, as in DeepSpeed
  });

  it("with onMinScale 'clamp' the scale stays at the minimum and steps keep being skipped", () => {
    const s = new DynamicLossScaler({ ...base, initScale: 4, hysteresis: 1, onMinScale: 'clamp' });
    trace(s, [
      ['O', 2, 1, 1],
      ['O', 1, 1, 2],
      ['O', 1, 1, 3],
      ['O', 1, 1, 4],
      ['C', 1, 1, 4],
    ]);
  });

  it('the hysteresis is consumed before the minimum matters', () => {
    const s = new DynamicLossScaler({ ...base, initScale: 1, hysteresis: 3 });
    trace(s, [
      ['O', 1, 2, 1],
      ['O', 1, 1, 2],
    ]);
    expect(() => s.update(true)).toThrow(/min_loss_scale/);
  });

  it('state dict round trip continues the same trajectory', () => {
    const steps = 'OCCOCCCCOOCCCCCCCOC'.split('') as ('O' | 'C')[];
    const a = new DynamicLossScaler({ ...base, onMinScale: 'clamp' });
    const b = new DynamicLossScaler({ ...base, onMinScale: 'clamp' });
    for (const st of steps.slice(0, 7)) a.update(st === 'O');
    b.loadStateDict(JSON.parse(JSON.stringify(a.stateDict())));
    for (const st of steps.slice(7)) {
      a.update(st === 'O');
      b.update(st === 'O');
      expect(b.stateDict()).toEqual(a.stateDict());
    }
    expect(() => b.loadStateDict(new StaticLossScaler(8).stateDict())).toThrow(/static/);
  });

  it('rejects invalid settings', () => {
    expect(() => new DynamicLossScaler({ ...base, scaleWindow: 0 })).toThrow(RangeError);
    expect(() => new DynamicLossScaler({ ...base, minScale: 0 })).toThrow(RangeError);
    expect(() => new DynamicLossScaler({ ...base, hysteresis: 0 })).toThrow(RangeError);
  });
});

describe('StaticLossScaler', () => {
  it('keeps its scale and counts skipped steps', () => {
    const s = new StaticLossScaler(128);
    for (const o of [false, true, true, false]) s.update(o);
    expect(s.lossScale).toBe(128);
    expect(s.skippedSteps).toBe(2);
    const t = new StaticLossScaler(1);
    t.loadStateDict(s.stateDict());
    expect([t.lossScale, t.skippedSteps]).toEqual([128, 2]);
  });
});

describe('createLossScaler (from the fp16 config)', () => {
  const fp16: Fp16Config = {
    enabled: true,
    auto_cast: false,
    loss_scale: 0,
    initial_scale_power: 16,
    loss_scale_window: 1000,
    hysteresis: 2,
    consecutive_hysteresis: false,
    min_loss_scale: 1,
    fp16_master_weights_and_grads: false,
  };

  it('loss_scale > 0 is static', () => {
    const s = createLossScaler({ ...fp16, loss_scale: 512 });
    expect(s.dynamic).toBe(false);
    expect(s.lossScale).toBe(512);
  });

  it("'zero' profile (default): 2^initial_scale_power, config hysteresis, error at the minimum", () => {
    const s = createLossScaler({ ...fp16, initial_scale_power: 2, min_loss_scale: 2 }) as DynamicLossScaler;
    expect(s.lossScale).toBe(4);
    s.update(true);
    expect([s.lossScale, s.hysteresisLeft]).toEqual([4, 1]);
    s.update(true);
    expect(s.lossScale).toBe(2);
    expect(() => s.update(true)).toThrow(LossScaleAtMinimumError);
  });

  it("'fp16-optimizer' profile: halves on every overflow and clamps (DeepSpeed's non-ZeRO FP16_Optimizer)", () => {
    const s = createLossScaler(
      { ...fp16, initial_scale_power: 2, min_loss_scale: 2 },
      {
        lossScaleProfile: 'fp16-optimizer',
      },
    ) as DynamicLossScaler;
    for (const want of [2, 2, 2]) {
      s.update(true);
      expect(s.lossScale).toBe(want);
    }
    expect(s.skippedSteps).toBe(3);
  });
});
