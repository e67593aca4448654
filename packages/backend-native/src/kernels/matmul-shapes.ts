import { tf } from '@zeroflow/core';

/** How a (possibly batched, broadcast, transposed) tfjs matmul maps onto one batched SGEMM call. */
export interface MatMulPlan {
  outShape: number[];
  batch: number;
  m: number;
  n: number;
  k: number;
  /** For each output batch, the A (resp. B) matrix it reads; null when A holds one matrix or exactly `batch`. */
  aIndex: Int32Array | null;
  bIndex: Int32Array | null;
}

/**
 * Shapes of `matMul(a, b, transposeA, transposeB)` with numpy-style broadcasting of the batch (outer) dims.
 * tfjs's cpu kernel indexes batches as `i % batchA`, which is right only when one side's batch dims are a
 * suffix of the other's; this plan broadcasts every dim properly, so it also covers e.g. [2,1,m,k] x [3,k,n].
 */
export function planMatMul(aShape: number[], bShape: number[], transposeA: boolean, transposeB: boolean): MatMulPlan {
  const aRank = aShape.length;
  const bRank = bShape.length;
  const innerA = transposeA ? aShape[aRank - 2] : aShape[aRank - 1];
  const innerB = transposeB ? bShape[bRank - 1] : bShape[bRank - 2];
  const m = transposeA ? aShape[aRank - 1] : aShape[aRank - 2];
  const n = transposeB ? bShape[bRank - 2] : bShape[bRank - 1];
  if (innerA !== innerB) {
    throw new Error(
      `Error in matMul: inner shapes (${innerA}) and (${innerB}) of Tensors with shapes ${aShape} and ${bShape} and transposeA=${transposeA} and transposeB=${transposeB} must match.`,
    );
  }
  const outerA = aShape.slice(0, -2);
  const outerB = bShape.slice(0, -2);
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB);
  const batch = tf.util.sizeFromShape(outer);
  return {
    outShape: [...outer, m, n],
    batch,
    m,
    n,
    k: innerA,
    aIndex: batchIndex(outerA, outer),
    bIndex: batchIndex(outerB, outer),
  };
}

/** The input batch each output batch reads, or null when the input holds one matrix or is not broadcast. */
function batchIndex(inShape: number[], outShape: number[]): Int32Array | null {
  const inSize = tf.util.sizeFromShape(inShape);
  const outSize = tf.util.sizeFromShape(outShape);
  if (inSize === 1 || inSize === outSize) return null;
  const rank = outShape.length;
  const padded = [...new Array(rank - inShape.length).fill(1), ...inShape];
  // Stride of each output dim in the input; 0 where the input is broadcast along it.
  const strides = new Array<number>(rank).fill(0);
  let stride = 1;
  for (let d = rank - 1; d >= 0; d--) {
    strides[d] = padded[d] === 1 ? 0 : stride;
    stride *= padded[d];
  }
  const index = new Int32Array(outSize);
  const coord = new Array<number>(rank).fill(0);
  for (let i = 0; i < outSize; i++) {
    let at = 0;
    for (let d = 0; d < rank; d++) at += coord[d] * strides[d];
    index[i] = at;
    for (let d = rank - 1; d >= 0; d--) {
      if (++coord[d] < outShape[d]) break;
      coord[d] = 0;
    }
  }
  return index;
}
