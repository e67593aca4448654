import { describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config/index.js';
import { ConfigError, ZeroFlowError } from '../src/errors.js';
import { Adam, AdamW, buildParamGroups, createOptimizer, Lamb, SGD } from '../src/optim/index.js';
import {
  makeRandom,
  maxRelativeError,
  randomArray,
  refAdamStep,
  refLambTensorStep,
  refSgdStep,
} from './optim-reference.js';

const N = 37;
const STEPS = 12;

describe('Adam / AdamW against the torch reference', () => {
  const cases = [
    { name: 'AdamW decoupled decay', decoupled: true, weightDecay: 0.1, biasCorrection: true },
    { name: 'Adam with L2 decay (adam_w_mode false)', decoupled: false, weightDecay: 0.1, biasCorrection: true },
    { name: 'Adam without bias correction', decoupled: true, weightDecay: 0, biasCorrection: false },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const random = makeRandom(7);
      const params = randomArray(N, random);
      const theta = Array.from(params);
      const m = new Array(N).fill(0);
      const v = new Array(N).fill(0);
      const ref = { lr: 0.01, beta1: 0.9, beta2: 0.99, eps: 1e-8, ...c };
      const opt = new Adam([{ weight_decay: c.weightDecay }], {
        lr: 0.01,
        betas: [0.9, 0.99],
        bias_correction: c.biasCorrection,
        adam_w_mode: c.decoupled,
      });
      for (let t = 1; t <= STEPS; t++) {
        const grads = randomArray(N, random);
        opt.step([{ params, grads }]);
        refAdamStep(ref, t, theta, grads, m, v);
        expect(maxRelativeError(params, theta)).toBeLessThan(3e-7);
      }
      const state = opt.stateDict().groups[0];
      expect(state.step).toBe(STEPS);
      expect(maxRelativeError(state.buffers.exp_avg, m)).toBeLessThan(1e-6);
      expect(maxRelativeError(state.buffers.exp_avg_sq, v)).toBeLessThan(1e-6);
    });
  }

  it('the two weight decay modes really differ', () => {
    const run = (mode: boolean) => {
      const params = new Float32Array([1, -2, 3]);
      const opt = new Adam([], { lr: 0.1, weight_decay: 0.5, adam_w_mode: mode });
      for (let i = 0; i < 3; i++) opt.step([{ params, grads: new Float32Array([0.1, 0.2, -0.3]) }]);
      return Array.from(params);
    };
    expect(run(true)).not.toEqual(run(false));
  });

  it('AdamW ignores adam_w_mode and always decouples; Adam defaults to decoupled like DeepSpeed', () => {
    const grads = new Float32Array([0.5, -0.25]);
    const results = [
      new AdamW([], { lr: 0.1, weight_decay: 0.3 }),
      createOptimizer('adamw', { lr: 0.1, weight_decay: 0.3, adam_w_mode: false }),
      createOptimizer('Adam', { lr: 0.1, weight_decay: 0.3 }),
      new Adam([], { lr: 0.1, weight_decay: 0.3, adam_w_mode: true }),
    ].map((opt) => {
      const params = new Float32Array([2, -1]);
      opt.step([{ params, grads }]);
      opt.step([{ params, grads }]);
      return Array.from(params);
    });
    for (const r of results) expect(r).toEqual(results[0]);
  });

  it('converges on an ill-conditioned quadratic', () => {
    // f(x) = 1/2 sum a_i (x_i - c_i)^2 with curvatures spanning four orders of magnitude.
    const n = 16;
    const a = Float64Array.from({ length: n }, (_, i) => 10 ** (-2 + (4 * i) / (n - 1)));
    const c = Float64Array.from({ length: n }, (_, i) => Math.sin(i + 1) * 3);
    const params = new Float32Array(n);
    const grads = new Float32Array(n);
    const loss = () => params.reduce((s, x, i) => s + 0.5 * a[i] * (x - c[i]) ** 2, 0);
    const initial = loss();
    const opt = new Adam([], { lr: 0.05 });
    for (let step = 0; step < 3000; step++) {
      for (let i = 0; i < n; i++) grads[i] = a[i] * (params[i] - c[i]);
      opt.step([{ params, grads }]);
    }
    expect(loss()).toBeLessThan(initial * 1e-6);
    for (let i = 0; i < n; i++) expect(Math.abs(params[i] - c[i])).toBeLessThan(1e-2);
  });
});

describe('SGD against the torch reference', () => {
  const cases = [
    { name: 'plain', momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
    { name: 'momentum + weight decay', momentum: 0.9, dampening: 0, weightDecay: 0.01, nesterov: false },
    { name: 'momentum + dampening', momentum: 0.8, dampening: 0.3, weightDecay: 0, nesterov: false },
    { name: 'nesterov + weight decay', momentum: 0.9, dampening: 0, weightDecay: 0.05, nesterov: true },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const random = makeRandom(11);
      const params = randomArray(N, random);
      const theta = Array.from(params);
      let buf: number[] | null = null;
      const ref = { lr: 0.05, ...c };
      const opt = createOptimizer('sgd', {
        lr: 0.05,
        momentum: c.momentum,
        dampening: c.dampening,
        weight_decay: c.weightDecay,
        nesterov: c.nesterov,
      });
      for (let t = 1; t <= STEPS; t++) {
        const grads = randomArray(N, random);
        opt.step([{ params, grads }]);
        buf = refSgdStep(ref, theta, grads, buf);
        expect(maxRelativeError(params, theta)).toBeLessThan(1e-7);
      }
      const buffers = opt.stateDict().groups[0].buffers;
      if (c.momentum === 0) expect(buffers.momentum_buffer).toBeUndefined();
      else expect(maxRelativeError(buffers.momentum_buffer, buf ?? [])).toBeLessThan(1e-6);
    });
  }

  it('rejects Nesterov without momentum, as torch does', () => {
    expect(() => new SGD([], { nesterov: true, momentum: 0 })).toThrow(ConfigError);
    expect(() => createOptimizer('SGD', { nesterov: true, momentum: 0.9, dampening: 0.1 })).toThrow(/Nesterov/);
  });
});

describe('Lamb against the DeepSpeed FusedLamb reference', () => {
  it('computes one trust ratio per segment over several steps, with weight decay', () => {
    const random = makeRandom(3);
    const sizes = [5, 12, 20];
    const n = sizes.reduce((s, x) => s + x, 0);
    const params = randomArray(n, random);
    const segments = sizes.map((length, i) => ({
      name: `t${i}`,
      offset: sizes.slice(0, i).reduce((s, x) => s + x, 0),
      length,
    }));
    const tensors = segments.map((s) => ({
      theta: Array.from(params.subarray(s.offset, s.offset + s.length)),
      m: new Array(s.length).fill(0),
      v: new Array(s.length).fill(0),
    }));
    const ref = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0.01, maxCoeff: 10, minCoeff: 0.01 };
    const opt = createOptimizer('LAMB', { lr: 0.01, eps: 1e-6, weight_decay: 0.01 }) as Lamb;
    for (let t = 1; t <= STEPS; t++) {
      const grads = randomArray(n, random);
      opt.step([{ params, grads, segments }]);
      const ratios = segments.map((s, k) =>
        refLambTensorStep(
          ref,
          t,
          tensors[k].theta,
          grads.subarray(s.offset, s.offset + s.length),
          tensors[k].m,
          tensors[k].v,
        ),
      );
      const coeffs = opt.getLambCoeffs()[0];
      for (let k = 0; k < ratios.length; k++) expect(coeffs[k]).toBeCloseTo(ratios[k], 6);
      expect(
        maxRelativeError(
          params,
          tensors.flatMap((x) => x.theta),
        ),
      ).toBeLessThan(3e-7);
    }
  });

  it('clamps the trust ratio to [min_coeff, max_coeff] and uses 1 for zero weights', () => {
    const segments = [
      { name: 'huge', offset: 0, length: 4 },
      { name: 'tiny', offset: 4, length: 4 },
      { name: 'zero', offset: 8, length: 4 },
    ];
    const params = new Float32Array([1000, -1000, 1000, 1000, 1e-6, -1e-6, 1e-6, 1e-6, 0, 0, 0, 0]);
    const grads = new Float32Array(12).fill(0.5);
    const theta = Array.from(params);
    const opt = new Lamb([], { lr: 0.1, max_coeff: 3, min_coeff: 0.2 });
    opt.step([{ params, grads, segments }]);
    expect(opt.getLambCoeffs()).toEqual([[3, 0.2, 1]]);
    const ref = { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, maxCoeff: 3, minCoeff: 0.2 };
    const expected: number[] = [];
    for (const s of segments) {
      const part = theta.slice(s.offset, s.offset + s.length);
      refLambTensorStep(ref, 1, part, grads.subarray(s.offset, s.offset + s.length), [0, 0, 0, 0], [0, 0, 0, 0]);
      expected.push(...part);
    }
    expect(maxRelativeError(params, expected)).toBeLessThan(1e-6);
  });

  it('treats a buffer without segments as one tensor and rejects segments with gaps', () => {
    const opt = new Lamb();
    opt.step([{ params: new Float32Array([3, 4]), grads: new Float32Array([1, 1]) }]);
    expect(opt.getLambCoeffs()[0]).toHaveLength(1);
    const bad = [
      { name: 'a', offset: 0, length: 1 },
      { name: 'b', offset: 2, length: 1 },
    ];
    expect(() => opt.step([{ params: new Float32Array(3), grads: new Float32Array(3), segments: bad }])).toThrow(
      ZeroFlowError,
    );
  });
});

describe('createOptimizer', () => {
  it('uses FusedAdam defaults and applies per-group overrides', () => {
    const opt = createOptimizer('Adam', { lr: 3e-4 }, [{ weight_decay: 0.1 }, { weight_decay: 0, lr: 1e-4 }]);
    expect(opt.type).toBe('Adam');
    expect(opt.paramGroups).toEqual([
      { lr: 3e-4, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.1, bias_correction: true },
      { lr: 1e-4, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0, bias_correction: true },
    ]);
    expect(createOptimizer('Lamb', {}).paramGroups[0]).toMatchObject({ max_coeff: 10, min_coeff: 0.01 });
    expect(createOptimizer('SGD', {}).paramGroups[0]).toEqual({
      lr: 1e-3,
      momentum: 0,
      dampening: 0,
      weight_decay: 0,
      nesterov: false,
    });
  });

  it('torch_adam AdamW takes torch.optim.AdamW default weight decay 0.01', () => {
    expect(createOptimizer('AdamW', { torch_adam: true }).paramGroups[0].weight_decay).toBe(0.01);
    expect(createOptimizer('AdamW', {}).paramGroups[0].weight_decay).toBe(0);
  });

  it('reports unknown types and keys with suggestions, and every bad value at once', () => {
    expect(() => createOptimizer('Adamm', {})).toThrow(/did you mean "Adam"/);
    try {
      createOptimizer('Adam', { lrr: 1, betas: [0.9], eps: -1, max_grad_norm: 1 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const issues = (e as ConfigError).issues;
      expect(issues.map((i) => i.path).sort()).toEqual([
        'optimizer.params.betas',
        'optimizer.params.eps',
        'optimizer.params.lrr',
        'optimizer.params.max_grad_norm',
      ]);
      expect(issues.find((i) => i.path.endsWith('lrr'))?.suggestion).toMatch(/"lr"/);
      expect(issues.find((i) => i.path.endsWith('max_grad_norm'))?.suggestion).toMatch(/gradient_clipping/);
    }
    expect(() => createOptimizer('Adam', { lr: 'auto' })).toThrow(/auto/);
    expect(() => createOptimizer('Adam', { amsgrad: true })).toThrow(/AMSGrad/);
    expect(() => createOptimizer('Adam', {}, [{ lr: -1 }])).toThrow(/param_groups\[0\]\.lr/);
  });

  it('validates with the config schema: the same rules and defaults as resolveConfig', () => {
    const config = resolveConfig({ train_batch_size: 1, optimizer: { type: 'lamb', params: { lr: 0.01 } } });
    // eps_inside_sqrt and amsgrad are optimizer-wide options, not group values.
    const { eps_inside_sqrt, amsgrad, ...groupValues } = (config.optimizer?.params ?? {}) as Record<string, unknown>;
    expect(createOptimizer('LAMB', { lr: 0.01 }).paramGroups[0]).toEqual(groupValues);
    expect(() => createOptimizer('Adam', { lr: 0 })).toThrow(/optimizer\.params\.lr = 0: must be a number > 0/);
    // Lamb implements eps_inside_sqrt, so a config file may set it too.
    const lamb = { train_batch_size: 1, optimizer: { type: 'Lamb', params: { eps_inside_sqrt: true } } };
    expect(resolveConfig(lamb).optimizer?.params).toMatchObject({ eps_inside_sqrt: true });
    expect((createOptimizer('Lamb', { eps_inside_sqrt: true }) as Lamb).epsInsideSqrt).toBe(true);
  });
});

describe('buildParamGroups', () => {
  const params = [
    { name: 'wte.weight', shape: [100, 16] },
    { name: 'h.0.ln_1.weight', shape: [16] },
    { name: 'h.0.attn.c_attn.weight', shape: [16, 48] },
    { name: 'h.0.attn.c_attn.bias', shape: [48] },
  ];

  it('by default decays matrices and embeddings but not 1-D params', () => {
    expect(buildParamGroups(params, { weightDecay: 0.1 })).toEqual([
      { names: ['wte.weight', 'h.0.attn.c_attn.weight'], weight_decay: 0.1 },
      { names: ['h.0.ln_1.weight', 'h.0.attn.c_attn.bias'], weight_decay: 0 },
    ]);
  });

  it('takes a custom rule, and its groups feed createOptimizer', () => {
    const groups = buildParamGroups(params, { weightDecay: 0.05, noDecay: (name) => name.startsWith('wte') });
    expect(groups[1].names).toEqual(['wte.weight']);
    const opt = createOptimizer('AdamW', { lr: 1e-3 }, groups);
    expect(opt.paramGroups.map((g) => g.weight_decay)).toEqual([0.05, 0]);
    expect(opt.paramGroups[0]).not.toHaveProperty('names');
  });
});
