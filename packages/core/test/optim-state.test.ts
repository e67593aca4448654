import { describe, expect, it } from 'vitest';
import { ZeroFlowError } from '../src/errors.js';
import { createOptimizer, type FlatGroupBuffers, type FlatOptimizer } from '../src/optim/index.js';
import { makeRandom, randomArray } from './optim-reference.js';

const SIZES = [23, 9];

/** Fixed gradients per step so that two runs see identical inputs. */
function gradientsFor(step: number): Float32Array[] {
  const random = makeRandom(1000 + step);
  return SIZES.map((n) => randomArray(n, random));
}

function run(opt: FlatOptimizer, params: Float32Array[], from: number, to: number): void {
  for (let step = from; step < to; step++) {
    const grads = gradientsFor(step);
    const buffers: FlatGroupBuffers[] = params.map((p, i) => ({
      params: p,
      grads: grads[i],
      segments: [
        { name: 'a', offset: 0, length: 4 },
        { name: 'b', offset: 4, length: p.length - 4 },
      ],
    }));
    opt.step(buffers);
  }
}

const CONFIGS: [string, Record<string, unknown>][] = [
  ['Adam', { lr: 0.01, weight_decay: 0.1 }],
  ['Adam', { lr: 0.01, weight_decay: 0.1, adam_w_mode: false }],
  ['AdamW', { lr: 0.01, weight_decay: 0.1, bias_correction: false }],
  ['SGD', { lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 0.01 }],
  ['Lamb', { lr: 0.01, weight_decay: 0.01 }],
];

describe('optimizer stateDict / loadStateDict', () => {
  for (const [type, params] of CONFIGS) {
    it(`${type} ${JSON.stringify(params)}: resuming from a state dict is bit-exact`, () => {
      const groups = [{}, { weight_decay: 0 }];
      const random = makeRandom(5);
      const initial = SIZES.map((n) => randomArray(n, random));

      const uninterrupted = createOptimizer(type, params, groups);
      const a = initial.map((p) => new Float32Array(p));
      run(uninterrupted, a, 0, 10);

      const first = createOptimizer(type, params, groups);
      const b = initial.map((p) => new Float32Array(p));
      run(first, b, 0, 4);
      const saved = first.stateDict();
      const savedParams = b.map((p) => new Float32Array(p));
      // Keep stepping the original: the saved dict must be a copy, not a view of live state.
      run(first, b, 4, 6);
      first.paramGroups[0].lr = 123;

      const resumed = createOptimizer(type, params, groups);
      resumed.loadStateDict(saved);
      // Mutating the source after loading must not reach the optimizer either.
      for (const g of saved.groups) for (const buf of Object.values(g.buffers)) buf.fill(Number.NaN);
      run(resumed, savedParams, 4, 10);

      for (let i = 0; i < a.length; i++) expect(savedParams[i]).toEqual(a[i]);
      expect(resumed.stateDict()).toEqual(uninterrupted.stateDict());
    });
  }

  it('restores the group options into the same group objects (schedulers keep their references)', () => {
    const opt = createOptimizer('Adam', { lr: 0.1 });
    const group = opt.paramGroups[0];
    const other = createOptimizer('Adam', { lr: 0.5, betas: [0.8, 0.9] });
    opt.loadStateDict(other.stateDict());
    expect(opt.paramGroups[0]).toBe(group);
    expect(group.lr).toBe(0.5);
    expect(group.betas).toEqual([0.8, 0.9]);
  });

  it('rejects buffers whose length differs from the state', () => {
    const opt = createOptimizer('Adam', {});
    opt.step([{ params: new Float32Array(4), grads: new Float32Array(4) }]);
    expect(() => opt.step([{ params: new Float32Array(5), grads: new Float32Array(5) }])).toThrow(/exp_avg/);
    expect(() => opt.step([{ params: new Float32Array(4), grads: new Float32Array(3) }])).toThrow(ZeroFlowError);
    expect(() => opt.step([])).toThrow(/param groups/);

    const small = createOptimizer('Adam', {});
    small.step([{ params: new Float32Array(2), grads: new Float32Array(2) }]);
    expect(() => opt.loadStateDict(small.stateDict())).toThrow(/lengths/);

    const fresh = createOptimizer('Adam', {});
    fresh.loadStateDict(small.stateDict());
    expect(() => fresh.step([{ params: new Float32Array(4), grads: new Float32Array(4) }])).toThrow(ZeroFlowError);
  });

  it('rejects state of another optimizer family or group count, and accepts Adam <-> AdamW', () => {
    const adam = createOptimizer('Adam', {});
    adam.step([{ params: new Float32Array(2), grads: new Float32Array([1, 2]) }]);
    expect(() => createOptimizer('SGD', {}).loadStateDict(adam.stateDict())).toThrow(/Cannot load Adam/);
    expect(() => createOptimizer('Adam', {}, [{}, {}]).loadStateDict(adam.stateDict())).toThrow(/param groups/);
    const adamw = createOptimizer('AdamW', {});
    adamw.loadStateDict(adam.stateDict());
    expect(adamw.stateDict().groups[0].step).toBe(1);
    const broken = adam.stateDict();
    delete broken.groups[0].buffers.exp_avg_sq;
    expect(() => createOptimizer('Adam', {}).loadStateDict(broken)).toThrow(/exp_avg_sq/);
  });
});
