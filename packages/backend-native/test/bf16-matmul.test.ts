/**
 * The opt-in bf16 matmul precision (Intel AMX): tfjs matMul and its gradients on `zeroflow-cpu` stay within
 * bf16 rounding of the fp32 results, equal a bf16-input reference closely, and fp32 is back after resetting.
 */
import { tf } from '@zeroflow/core';
import { afterEach, describe, expect, it } from 'vitest';
import { matMulPrecision, nativeBackendStatus, setMatMulPrecision } from '../src/index.js';
import { maxRelErr, NATIVE, randomTensor, valuesOn } from './helpers.js';

const amx = nativeBackendStatus()?.info?.amxBf16 === true;

/** Rounds float32 values to bf16 (nearest even), as the kernel rounds its inputs. */
function toBf16(t: tf.Tensor): tf.Tensor {
  const v = Float32Array.from(t.dataSync() as Float32Array);
  const u = new Uint32Array(v.buffer);
  for (let i = 0; i < u.length; i++) u[i] = (((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return tf.tensor(v, t.shape, 'float32');
}

describe.skipIf(!nativeBackendStatus()?.active)('matmul precision', () => {
  afterEach(() => {
    setMatMulPrecision('fp32');
  });

  it('defaults to fp32 and reports fp32 when bf16 cannot run', () => {
    expect(matMulPrecision()).toBe('fp32');
    expect(setMatMulPrecision('bf16')).toBe(amx ? 'bf16' : 'fp32');
  });

  it.skipIf(!amx)('bf16 matmul and its gradients follow bf16 inputs with fp32 accumulation', () => {
    const a = randomTensor([3, 70, 96]);
    const b = randomTensor([96, 45]);
    const fp32 = valuesOn(NATIVE, () => tf.matMul(a, b))[0];
    const [ar, br] = [toBf16(a), toBf16(b)];
    const onBf16Inputs = valuesOn(NATIVE, () => tf.matMul(ar, br))[0]; // fp32 product of the rounded inputs
    setMatMulPrecision('bf16');
    const bf = valuesOn(NATIVE, () => tf.matMul(a, b))[0];
    expect(maxRelErr(bf, onBf16Inputs)).toBeLessThanOrEqual(1e-5);
    const err = maxRelErr(bf, fp32);
    expect(err).toBeGreaterThan(0); // it really ran in bf16
    expect(err).toBeLessThanOrEqual(5e-2);
    // 2-D for the gradients: tfjs's own BatchMatMul gradient fails on broadcast batch dims (DESIGN.md 4)
    const a2 = tf.reshape(a, [210, 96]);
    const loss = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.square(tf.matMul(x, y)));
    const grads = valuesOn(NATIVE, () => tf.grads(loss)([a2, b]));
    setMatMulPrecision('fp32');
    const grads32 = valuesOn(NATIVE, () => tf.grads(loss)([a2, b]));
    grads.forEach((g, i) => {
      const scale = Math.max(...grads32[i].map(Math.abs));
      const worst = Math.max(...g.map((v, j) => Math.abs(v - grads32[i][j]))) / scale;
      expect(worst, `gradient ${i}`).toBeLessThanOrEqual(5e-2);
    });
    expect(valuesOn(NATIVE, () => tf.matMul(a, b))[0]).toEqual(fp32);
    tf.dispose([a, b, ar, br, a2]);
  });
});
