/**
 * The native BatchMatMul and _FusedMatMul kernels against tfjs's JS cpu kernels on random inputs: odd sizes,
 * transposes, batch dims and their broadcasting, fused bias/activations, gradients through tf.grads,
 * fallbacks (int32), and independence from the thread count.
 */
import { tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { nativeBackendStatus, setNativeThreads } from '../src/index.js';
import { compareBackends, maxRelErr, NATIVE, randomTensor, valuesOn } from './helpers.js';

const TOL = 1e-5;
const status = nativeBackendStatus();
const native = status?.active === true;

describe.skipIf(!native)('native BatchMatMul', () => {
  it('is the active backend after import', () => {
    expect(tf.getBackend()).toBe(NATIVE);
    expect(status?.nativeKernels).toEqual(expect.arrayContaining(['BatchMatMul', '_FusedMatMul']));
  });

  const SIZES = [1, 7, 33, 130];
  it('2-D: every m, n, k in {1, 7, 33, 130} and every transpose', () => {
    for (const m of SIZES)
      for (const n of SIZES)
        for (const k of [1, 7, 130]) {
          for (const ta of [false, true])
            for (const tb of [false, true]) {
              const a = randomTensor(ta ? [k, m] : [m, k]);
              const b = randomTensor(tb ? [n, k] : [k, n]);
              const err = compareBackends(() => tf.matMul(a, b, ta, tb));
              expect(err, `${m}x${n}x${k} ta=${ta} tb=${tb}`).toBeLessThanOrEqual(TOL);
              tf.dispose([a, b]);
            }
        }
  });

  it('batch dims, and broadcasting that tfjs cpu supports (one side a suffix or size 1)', () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[5, 7, 33], [5, 33, 9], false, false],
      [[2, 3, 7, 33], [2, 3, 9, 33], false, true],
      [[2, 3, 33, 7], [2, 3, 33, 9], true, false],
      [[1, 7, 33], [4, 33, 9], false, false],
      [[4, 7, 33], [1, 33, 9], false, false],
      [[4, 7, 33], [33, 9], false, false],
      [[33, 7], [3, 2, 9, 33], true, true],
      [[2, 3, 7, 33], [3, 33, 9], false, false],
      [[32, 64, 16], [32, 64, 16], false, true],
    ];
    for (const [as, bs, ta, tb] of cases) {
      const a = randomTensor(as);
      const b = randomTensor(bs);
      expect(
        compareBackends(() => tf.matMul(a, b, ta, tb)),
        `${as} x ${bs}`,
      ).toBeLessThanOrEqual(TOL);
      tf.dispose([a, b]);
    }
  });

  it('general broadcasting ([2,1,m,k] x [3,k,n]) matches matMul of the explicitly tiled inputs', () => {
    const a = randomTensor([2, 1, 7, 5]);
    const b = randomTensor([3, 5, 4]);
    const [got] = valuesOn(NATIVE, () => tf.matMul(a, b));
    const [want] = valuesOn('cpu', () =>
      tf.matMul(tf.tile(a, [1, 3, 1, 1]), tf.tile(tf.expandDims(b, 0), [2, 1, 1, 1])),
    );
    expect(maxRelErr(got, want)).toBeLessThanOrEqual(TOL);
    tf.dispose([a, b]);
  });

  it('gradients through tf.grads match (2-D, batched, transposed)', () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[7, 33], [33, 130], false, false],
      [[3, 33, 7], [3, 9, 33], true, true],
      [[2, 2, 1, 7], [2, 2, 7, 33], false, false],
    ];
    for (const [as, bs, ta, tb] of cases) {
      const a = randomTensor(as);
      const b = randomTensor(bs);
      const w = randomTensor(tf.matMul(a, b, ta, tb).shape);
      const err = compareBackends(() =>
        tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), w)))([a, b]),
      );
      expect(err, `${as} x ${bs}`).toBeLessThanOrEqual(TOL);
      tf.dispose([a, b, w]);
    }
  });

  it('int32 inputs fall back to the cpu kernel', () => {
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32');
    const b = tf.tensor2d([1, 0, 2, 1, 0, 3], [3, 2], 'int32');
    const c = tf.matMul(a, b);
    expect(c.dtype).toBe('int32');
    expect(Array.from(c.dataSync())).toEqual([5, 11, 14, 23]);
    tf.dispose([a, b, c]);
  });

  it('results do not depend on the thread count', () => {
    const a = randomTensor([3, 130, 257]);
    const b = randomTensor([3, 257, 99]);
    const runs = [1, 2, 3].map((threads) => {
      expect(setNativeThreads(threads)).toBe(threads);
      return valuesOn(NATIVE, () => tf.matMul(a, b))[0];
    });
    setNativeThreads(0);
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
    tf.dispose([a, b]);
  });
});

describe.skipIf(!native)('native _FusedMatMul', () => {
  const ACTIVATIONS = ['linear', 'relu', 'relu6', 'elu', 'sigmoid', 'leakyrelu', 'prelu'] as const;
  it('bias shapes ([n], [1,n], [m,n], [b,m,n]) x every activation x transposes', () => {
    for (const activation of ACTIVATIONS) {
      for (const [as, bs, biasShape, ta, tb] of [
        [[7, 33], [33, 9], [9], false, false],
        [[33, 7], [9, 33], [1, 9], true, true],
        [[7, 33], [33, 9], [7, 9], false, false],
        [[2, 7, 33], [2, 33, 9], [2, 7, 9], false, false],
        [[2, 7, 33], [2, 9, 33], null, false, true],
        [[1, 1], [1, 1], [1], false, false],
      ] as [number[], number[], number[] | null, boolean, boolean][]) {
        const a = randomTensor(as);
        const b = randomTensor(bs);
        const bias = biasShape ? randomTensor(biasShape) : undefined;
        const alpha = activation === 'prelu' ? randomTensor([bs[bs.length - (tb ? 2 : 1)]]) : undefined;
        const err = compareBackends(() =>
          tf.fused.matMul({
            a,
            b,
            transposeA: ta,
            transposeB: tb,
            bias,
            activation,
            preluActivationWeights: alpha,
            leakyreluAlpha: 0.1,
          }),
        );
        expect(err, `${activation} ${as} x ${bs} + ${biasShape}`).toBeLessThanOrEqual(TOL);
        tf.dispose([a, b, ...(bias ? [bias] : []), ...(alpha ? [alpha] : [])]);
      }
    }
  });

  it('gradients through tf.grads match (bias + relu, bias + linear)', () => {
    for (const activation of ['linear', 'relu'] as const) {
      const a = randomTensor([7, 33]);
      const b = randomTensor([33, 130]);
      const bias = randomTensor([130]);
      const err = compareBackends(() =>
        tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) =>
          tf.sum(tf.square(tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, bias: z, activation }))),
        )([a, b, bias]),
      );
      expect(err, activation).toBeLessThanOrEqual(TOL);
      tf.dispose([a, b, bias]);
    }
  });
});
