import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/index.js';
import { ConfigError } from '../src/errors.js';
import { createOptimizer, createScheduler, type FlatOptimizer, type OneCycle, WarmupLR } from '../src/optim/index.js';

/**
 * Reference schedules written from DeepSpeed's documentation of each scheduler, as functions of
 * t = last_batch_iteration (-1 before the first step).
 */
type Ref = (t: number) => number;

function warmupFractionRef(type: string, t: number, steps: number): number {
  const w = Math.max(2, steps);
  return type === 'log' ? Math.log(t + 1) / Math.log(w) : t / w;
}

function warmupLrRef(min: number, max: number, steps: number, type: string): Ref {
  return (t) => {
    if (t < 0) return min;
    if (t >= Math.max(2, steps)) return max;
    return min + (max - min) * warmupFractionRef(type, t, steps);
  };
}

function warmupDecayRef(min: number, max: number, steps: number, total: number, type: string): Ref {
  const w = Math.max(2, steps);
  return (t) => {
    if (t < w) return warmupLrRef(min, max, steps, type)(t);
    const remaining = Math.max(0, (total - t) / Math.max(1, total - w));
    return min + (max - min) * remaining;
  };
}

function warmupCosineRef(
  baseLr: number,
  total: number,
  steps: number,
  minRatio: number,
  cosMin: number,
  type: string,
): Ref {
  const w = Math.max(2, steps);
  return (t) => {
    if (t < 0) return 0;
    if (t < w) return baseLr * (minRatio + (1 - minRatio) * warmupFractionRef(type, t, steps));
    const progress = Math.min(1, (t - w + 1) / Math.max(1, total - w));
    return baseLr * (cosMin + (1 - cosMin) * 0.5 * (1 + Math.cos(Math.PI * progress)));
  };
}

interface OneCycleRefParams {
  minLr: number;
  maxLr: number;
  first: number;
  second: number;
  firstStairs: number;
  secondStairs: number;
  decayStep: number;
  decayLrRate: number;
  minMom: number;
  maxMom: number;
  decayMomRate: number;
}

/** Fraction of the way up the cycle for batch b = t + 1: up over `first` batches, down over `second`. */
function cycleFraction(p: OneCycleRefParams, t: number): number {
  const inCycle = (t + 1) % (p.first + p.second);
  const rising = inCycle <= p.first;
  const frac = rising ? inCycle / p.first : (p.first + p.second - inCycle) / p.second;
  const stairs = rising ? p.firstStairs : p.secondStairs;
  if (stairs <= 0) return frac;
  const position = rising ? (inCycle * stairs) / p.first : ((p.first + p.second - inCycle) * stairs) / p.second;
  return Math.floor(position) / stairs;
}

function oneCycleLrRef(p: OneCycleRefParams): Ref {
  return (t) => {
    if (t < 0) return p.minLr;
    if (t < p.first + p.second) return p.minLr + (p.maxLr - p.minLr) * cycleFraction(p, t);
    if (p.decayStep === 0 || p.decayLrRate === 0) return p.minLr;
    return p.minLr / (1 + p.decayLrRate * ((t - p.first - p.second + 1) / p.decayStep));
  };
}

function oneCycleMomRef(p: OneCycleRefParams): Ref {
  return (t) => {
    if (t < 0) return p.minMom;
    if (t < p.first + p.second) return p.maxMom - (p.maxMom - p.minMom) * cycleFraction(p, t);
    if (p.decayStep === 0 || p.decayMomRate === 0) return p.maxMom;
    return p.maxMom * (1 + p.decayMomRate * ((t - p.first - p.second + 1) / p.decayStep));
  };
}

function rangeTestRef(min: number, size: number, rate: number, staircase: boolean): Ref {
  return (t) => {
    const interval = staircase ? Math.floor((t + 1) / size) : (t + 1) / size;
    return min * (1 + rate * interval);
  };
}

const LAST_STEP = 2000;

function expectClose(actual: number, expected: number, what: string): void {
  const tolerance = 1e-12 * Math.max(Math.abs(expected), 1e-9);
  if (!(Math.abs(actual - expected) <= tolerance)) expect.fail(`${what}: got ${actual}, expected ${expected}`);
}

/** Checks the optimizer's lr after construction and after each of steps 0..LAST_STEP. */
function checkSchedule(
  type: string,
  params: Record<string, unknown>,
  ref: Ref,
  optimizer: FlatOptimizer = createOptimizer('Adam', { lr: 0.01 }),
  read: (o: FlatOptimizer) => number = (o) => o.paramGroups[0].lr,
): void {
  const scheduler = createScheduler(type, params, optimizer);
  expectClose(read(optimizer), ref(-1), `${type} at construction`);
  for (let t = 0; t <= LAST_STEP; t++) {
    scheduler.step();
    expectClose(read(optimizer), ref(t), `${type} at t=${t}`);
  }
}

describe('DeepSpeed LR schedules against reference formulas, t = -1..2000', () => {
  for (const type of ['log', 'linear']) {
    it(`WarmupLR ${type}`, () => {
      const p = { warmup_min_lr: 1e-5, warmup_max_lr: 1e-3, warmup_num_steps: 300, warmup_type: type };
      checkSchedule('WarmupLR', p, warmupLrRef(1e-5, 1e-3, 300, type));
      // warmup_num_steps below 2 acts as 2; warmup_max_lr defaults to the optimizer's lr.
      checkSchedule('WarmupLR', { warmup_num_steps: 1, warmup_type: type }, warmupLrRef(0, 0.01, 1, type));
    });

    it(`WarmupDecayLR ${type} (lr reaches 0 at total_num_steps and stays there)`, () => {
      const p = { total_num_steps: 1500, warmup_min_lr: 1e-5, warmup_max_lr: 5e-4, warmup_num_steps: 200 };
      checkSchedule('WarmupDecayLR', { ...p, warmup_type: type }, warmupDecayRef(1e-5, 5e-4, 200, 1500, type));
      // DeepSpeed's WarmupDecayLR defaults warmup_max_lr to 0.001, not the optimizer's lr.
      checkSchedule(
        'WarmupDecayLR',
        { total_num_steps: 900, warmup_type: type },
        warmupDecayRef(0, 1e-3, 1000, 900, type),
      );
    });

    it(`WarmupCosineLR ${type} (ratios of the optimizer's lr)`, () => {
      const p = { total_num_steps: 1500, warmup_num_steps: 100, warmup_min_ratio: 0.1, cos_min_ratio: 0.01 };
      checkSchedule('WarmupCosineLR', { ...p, warmup_type: type }, warmupCosineRef(0.01, 1500, 100, 0.1, 0.01, type));
      const opt = createOptimizer('SGD', { lr: 0.3 });
      checkSchedule(
        'WarmupCosineLR',
        { total_num_steps: 1800, warmup_type: type },
        warmupCosineRef(0.3, 1800, 1000, 0, 1e-4, type),
        opt,
      );
    });
  }

  const cycle: OneCycleRefParams = {
    minLr: 1e-4,
    maxLr: 1e-2,
    first: 300,
    second: 500,
    firstStairs: 0,
    secondStairs: 0,
    decayStep: 100,
    decayLrRate: 0.5,
    minMom: 0.85,
    maxMom: 0.95,
    decayMomRate: 0.01,
  };
  const cycleParams = (p: OneCycleRefParams) => ({
    cycle_min_lr: p.minLr,
    cycle_max_lr: p.maxLr,
    cycle_first_step_size: p.first,
    cycle_second_step_size: p.second,
    cycle_first_stair_count: p.firstStairs,
    cycle_second_stair_count: p.secondStairs,
    decay_step_size: p.decayStep,
    decay_lr_rate: p.decayLrRate,
    cycle_min_mom: p.minMom,
    cycle_max_mom: p.maxMom,
    decay_mom_rate: p.decayMomRate,
  });

  it('OneCycle lr and momentum (betas[0] of Adam, beta2 kept)', () => {
    checkSchedule('OneCycle', cycleParams(cycle), oneCycleLrRef(cycle));
    const opt = createOptimizer('Adam', { betas: [0.9, 0.98] });
    checkSchedule('OneCycle', cycleParams(cycle), oneCycleMomRef(cycle), opt, (o) => o.paramGroups[0].betas?.[0] ?? -1);
    expect(opt.paramGroups[0].betas?.[1]).toBe(0.98);
  });

  it('OneCycle with stairs, no decay, and momentum written to SGD', () => {
    const stairs = { ...cycle, firstStairs: 6, secondStairs: 4, decayStep: 0 };
    checkSchedule('OneCycle', cycleParams(stairs), oneCycleLrRef(stairs));
    const sgd = createOptimizer('SGD', { momentum: 0.9 });
    checkSchedule('OneCycle', cycleParams(stairs), oneCycleMomRef(stairs), sgd, (o) => o.paramGroups[0].momentum ?? -1);
  });

  it('OneCycle defaults: second half = first half, momentum 0.8..0.9, cycle_momentum false leaves betas', () => {
    const p = { ...cycle, first: 2000, second: 2000, decayStep: 0, minMom: 0.8, maxMom: 0.9 };
    checkSchedule('OneCycle', { cycle_min_lr: 1e-4, cycle_max_lr: 1e-2 }, oneCycleLrRef(p));
    const opt = createOptimizer('Adam', {});
    const s = createScheduler('OneCycle', { cycle_min_lr: 0, cycle_max_lr: 1, cycle_momentum: false }, opt) as OneCycle;
    s.step();
    expect(s.momentumTarget).toBe('none');
    expect(opt.paramGroups[0].betas).toEqual([0.9, 0.999]);
  });

  for (const staircase of [false, true]) {
    it(`LRRangeTest staircase=${staircase}`, () => {
      const p = {
        lr_range_test_min_lr: 1e-4,
        lr_range_test_step_size: 150,
        lr_range_test_step_rate: 2.5,
        lr_range_test_staircase: staircase,
      };
      checkSchedule('LRRangeTest', p, rangeTestRef(1e-4, 150, 2.5, staircase));
    });
  }
});

describe('scheduler state and resumption', () => {
  const configs: [string, Record<string, unknown>][] = [
    ['WarmupLR', { warmup_num_steps: 50 }],
    ['WarmupDecayLR', { total_num_steps: 1000, warmup_num_steps: 50, warmup_type: 'linear' }],
    ['WarmupCosineLR', { total_num_steps: 1000, warmup_num_steps: 50 }],
    [
      'OneCycle',
      { cycle_min_lr: 1e-4, cycle_max_lr: 1e-2, cycle_first_step_size: 100, decay_step_size: 10, decay_lr_rate: 0.1 },
    ],
    ['LRRangeTest', { lr_range_test_step_size: 10 }],
  ];
  for (const [type, params] of configs) {
    it(`${type}: a scheduler loaded from a state dict continues bit-exactly`, () => {
      const a = createOptimizer('Adam', { lr: 0.01 });
      const sa = createScheduler(type, params, a);
      for (let i = 0; i < 321; i++) sa.step();
      const saved = JSON.parse(JSON.stringify(sa.stateDict())) as Record<string, unknown>;
      expect(saved.last_batch_iteration).toBe(320);

      // Resume on a fresh optimizer (base lr from the config, as after a restart).
      const b = createOptimizer('Adam', { lr: 0.01 });
      const sb = createScheduler(type, params, b);
      sb.loadStateDict(saved);
      expect(b.paramGroups).toEqual(a.paramGroups);
      for (let i = 0; i < 500; i++) {
        sa.step();
        sb.step();
        expect(sb.getLr()).toEqual(sa.getLr());
        expect(b.paramGroups[0].betas).toEqual(a.paramGroups[0].betas);
      }
    });
  }

  it('WarmupCosineLR keeps its base lr when rebuilt after the optimizer state was restored', () => {
    const a = createOptimizer('AdamW', { lr: 0.02 });
    const sa = createScheduler('WarmupCosineLR', { total_num_steps: 100, warmup_num_steps: 10 }, a);
    for (let i = 0; i < 40; i++) sa.step();
    const b = createOptimizer('AdamW', { lr: 0.02 });
    b.loadStateDict(a.stateDict()); // now b's lr is the scheduled one, not the base lr
    const sb = createScheduler('WarmupCosineLR', { total_num_steps: 100, warmup_num_steps: 10 }, b);
    sb.loadStateDict(sa.stateDict());
    sa.step();
    sb.step();
    expect(sb.getLr()).toEqual(sa.getLr());
  });

  it('follows DeepSpeed last_batch_iteration semantics', () => {
    const opt = createOptimizer('SGD', { lr: 0.5 });
    // Resuming by parameter: the optimizer's lr is not touched until the next step, which applies t + 1.
    const s = new WarmupLR(opt, {
      warmup_max_lr: 1,
      warmup_num_steps: 10,
      warmup_type: 'linear',
      last_batch_iteration: 4,
    });
    expect(opt.paramGroups[0].lr).toBe(0.5);
    s.step();
    expect(opt.paramGroups[0].lr).toBeCloseTo(0.5, 15);
    s.step(8);
    expect(opt.paramGroups[0].lr).toBeCloseTo(0.8, 15);
    expect(s.stateDict()).toEqual({ last_batch_iteration: 8 });
  });

  it('takes one value per param group', () => {
    const opt = createOptimizer('Adam', {}, [{ lr: 1 }, { lr: 2 }]);
    const s = createScheduler(
      'WarmupLR',
      { warmup_min_lr: [0.1, 0.2], warmup_num_steps: 10, warmup_type: 'linear' },
      opt,
    );
    expect(s.getLr()).toEqual([0.1, 0.2]);
    for (let i = 0; i <= 10; i++) s.step();
    expect(s.getLr()).toEqual([1, 2]);
    expect(() => createScheduler('WarmupLR', { warmup_min_lr: [0.1] }, opt)).toThrow(/one per param group/);
  });

  it('reports config mistakes with paths and suggestions', () => {
    const opt = createOptimizer('Adam', {});
    expect(() => createScheduler('WarmupCosine', {}, opt)).toThrow(/did you mean "WarmupCosineLR"/);
    expect(() => createScheduler('WarmupLR', { warmup_max_lrr: 1 }, opt)).toThrow(/did you mean "warmup_max_lr"/);
    expect(() => createScheduler('WarmupDecayLR', {}, opt)).toThrow(/scheduler\.params\.total_num_steps/);
    expect(() => createScheduler('WarmupLR', { warmup_type: 'cosine' }, opt)).toThrow(ConfigError);
    expect(() => createScheduler('WarmupLR', { warmup_num_steps: 0 }, opt)).toThrow(/warmup_num_steps/);
    expect(() => createScheduler('OneCycle', { cycle_max_lr: 1 }, opt)).toThrow(/cycle_min_lr/);
    expect(() => createScheduler('warmuplr', {}, opt)).not.toThrow();
    expect(() => createScheduler('WarmupCosineLR', { total_num_steps: 'auto' }, opt)).toThrow(/must be resolved/);
  });

  it('validates with the config schema: per-group lists are accepted by resolveConfig too', () => {
    const params = { warmup_min_lr: [0.1, 0.2], warmup_num_steps: 10 };
    const config = resolveConfig({ train_batch_size: 1, scheduler: { type: 'WarmupLR', params } });
    expect(config.scheduler?.params).toMatchObject(params);
    const opt = createOptimizer('Adam', {}, [{ lr: 1 }, { lr: 2 }]);
    expect(createScheduler('WarmupLR', config.scheduler?.params ?? {}, opt).getLr()).toEqual([0.1, 0.2]);
  });
});
