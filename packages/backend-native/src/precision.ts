import { loadKernelsAddon } from '@zeroflow/native';

/** The compute precision of the native matmul: fp32 (default) or bf16 (opt-in, Intel AMX). */
export type MatMulPrecision = 'fp32' | 'bf16';

// On globalThis, like the backend's status: two copies of this package in one process share one setting.
const KEY = Symbol.for('zeroflow.backend-native.matmulPrecision');
const slot = globalThis as unknown as Record<symbol, MatMulPrecision | undefined>;

function fromEnv(): MatMulPrecision {
  return process.env.ZEROFLOW_MATMUL_PRECISION === 'bf16' ? 'bf16' : 'fp32';
}

/**
 * The precision BatchMatMul / _FusedMatMul compute in. `bf16` rounds both inputs to bf16 (nearest even) and
 * accumulates in fp32 on Intel AMX (as PyTorch's bf16 autocast on CPU), forward and backward; it applies only
 * where the CPU, OS and kernel allow AMX (`info.amxBf16`), and fp32 runs otherwise.
 */
export function matMulPrecision(): MatMulPrecision {
  slot[KEY] ??= fromEnv();
  return slot[KEY];
}

/**
 * Sets the matmul compute precision (default: `ZEROFLOW_MATMUL_PRECISION`, else fp32); returns the precision
 * that will actually run: `fp32` when bf16 was asked for but AMX is unavailable here.
 */
export function setMatMulPrecision(precision: MatMulPrecision): MatMulPrecision {
  slot[KEY] = precision;
  return precision === 'bf16' && !loadKernelsAddon()?.info().amxBf16 ? 'fp32' : precision;
}
