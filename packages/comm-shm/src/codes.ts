/**
 * Numeric codes shared with the native addon (native/src/shm_comm.h and reduce_kernels.h), and the mapping
 * of native outcomes to core's typed errors.
 */
import { type CommDtype, CommError, CommMismatchError, CommTimeoutError, type ReduceOp } from '@zeroflow/core';

export const DTYPE_CODE: Record<CommDtype, number> = { float32: 0, float16: 1, bfloat16: 2, int32: 3 };
export const OP_CODE: Record<ReduceOp, number> = { sum: 0, avg: 1, max: 2, min: 3 };

export const KIND = {
  barrier: 1,
  allReduce: 2,
  reduceScatter: 3,
  allGather: 4,
  broadcast: 5,
  send: 6,
  recv: 7,
} as const;

/** Native outcome codes (zf::Status). */
export const STATUS = { ok: 0, timeout: 1, peerDead: 2, mismatch: 3, error: 4, shutdown: 5 } as const;

/** [status, peer global rank or -1, message], as the addon returns it. */
export type NativeResult = [status: number, peer: number, message: string];

/** The typed error for a failed native result (undefined when it succeeded). */
export function errorFromNative(result: NativeResult, context: string): CommError | undefined {
  const [status, peer, message] = result;
  if (status === STATUS.ok) return undefined;
  const text = `${context}: ${message}`;
  switch (status) {
    case STATUS.timeout:
    case STATUS.peerDead:
      return new CommTimeoutError(text, peer >= 0 ? peer : undefined);
    case STATUS.mismatch:
      return new CommMismatchError(text);
    default:
      return new CommError(text);
  }
}
