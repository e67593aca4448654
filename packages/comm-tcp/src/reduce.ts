/**
 * Elementwise reductions over byte views of staging memory. Every rank applies them in the order the ring
 * fixes, so results are bit-identical run to run. 16-bit floats are widened to fp32, reduced, and rounded
 * back to nearest even at every step (what travels on the wire is 16-bit).
 */
import type { CommDtype, ReduceOp } from '@zeroflow/core';
import {
  bf16ToFp32 as bf16ToFloat,
  fp32ToBf16 as floatToBf16,
  fp32ToFp16 as floatToFp16,
  fp16ToFp32,
} from '@zeroflow/core';

/** `dst = dst (op) src`, elementwise, over byte views of equal length. */
export type Reducer = (dst: Uint8Array, src: Uint8Array) => void;

function f32View(b: Uint8Array): Float32Array {
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
}
function i32View(b: Uint8Array): Int32Array {
  return new Int32Array(b.buffer, b.byteOffset, b.byteLength >>> 2);
}
function u16View(b: Uint8Array): Uint16Array {
  return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >>> 1);
}

// max/min propagate NaN (like torch.maximum): `a > b || Number.isNaN(a)` keeps a NaN a, and b wins otherwise
function reduceF32(op: ReduceOp): Reducer {
  if (op === 'max') {
    return (d, s) => {
      const x = f32View(d);
      const y = f32View(s);
      for (let i = 0; i < x.length; i++) {
        const a = x[i];
        const b = y[i];
        x[i] = a > b || Number.isNaN(a) ? a : b;
      }
    };
  }
  if (op === 'min') {
    return (d, s) => {
      const x = f32View(d);
      const y = f32View(s);
      for (let i = 0; i < x.length; i++) {
        const a = x[i];
        const b = y[i];
        x[i] = a < b || Number.isNaN(a) ? a : b;
      }
    };
  }
  return (d, s) => {
    const x = f32View(d);
    const y = f32View(s);
    for (let i = 0; i < x.length; i++) x[i] += y[i];
  };
}

function reduceI32(op: ReduceOp): Reducer {
  if (op === 'max') {
    return (d, s) => {
      const x = i32View(d);
      const y = i32View(s);
      for (let i = 0; i < x.length; i++) if (y[i] > x[i]) x[i] = y[i];
    };
  }
  if (op === 'min') {
    return (d, s) => {
      const x = i32View(d);
      const y = i32View(s);
      for (let i = 0; i < x.length; i++) if (y[i] < x[i]) x[i] = y[i];
    };
  }
  return (d, s) => {
    const x = i32View(d);
    const y = i32View(s);
    for (let i = 0; i < x.length; i++) x[i] = (x[i] + y[i]) | 0; // wraps like C int32
  };
}

function reduce16(op: ReduceOp, widen: (h: number) => number, narrow: (v: number) => number): Reducer {
  const combine =
    op === 'max'
      ? (a: number, b: number) => (a > b || Number.isNaN(a) ? a : b)
      : op === 'min'
        ? (a: number, b: number) => (a < b || Number.isNaN(a) ? a : b)
        : (a: number, b: number) => Math.fround(a + b);
  return (d, s) => {
    const x = u16View(d);
    const y = u16View(s);
    for (let i = 0; i < x.length; i++) x[i] = narrow(combine(widen(x[i]), widen(y[i])));
  };
}

const fp16Widen = fp16ToFp32;

/** The reducer for a dtype and op (`avg` reduces as `sum`; {@link divideInPlace} finishes it). */
export function reducerFor(dtype: CommDtype, op: ReduceOp): Reducer {
  switch (dtype) {
    case 'float32':
      return reduceF32(op);
    case 'int32':
      return reduceI32(op);
    case 'float16':
      return reduce16(op, fp16Widen, floatToFp16);
    case 'bfloat16':
      return reduce16(op, bf16ToFloat, floatToBf16);
  }
}

/** Divides a reduced sum by the group size: the `avg` op. int32 truncates toward zero. */
export function divideInPlace(dtype: CommDtype, view: Uint8Array, n: number): void {
  if (n === 1) return;
  switch (dtype) {
    case 'float32': {
      const x = f32View(view);
      for (let i = 0; i < x.length; i++) x[i] /= n;
      return;
    }
    case 'int32': {
      const x = i32View(view);
      for (let i = 0; i < x.length; i++) x[i] = Math.trunc(x[i] / n);
      return;
    }
    case 'float16': {
      const x = u16View(view);
      for (let i = 0; i < x.length; i++) x[i] = floatToFp16(Math.fround(fp16ToFp32(x[i]) / n));
      return;
    }
    case 'bfloat16': {
      const x = u16View(view);
      for (let i = 0; i < x.length; i++) x[i] = floatToBf16(Math.fround(bf16ToFloat(x[i]) / n));
      return;
    }
  }
}
