/**
 * Per-rank model-state bytes (parameters, gradients, optimizer state) for a ZeRO stage, as in the ZeRO paper
 * and DESIGN.md section 6, with the padding of the real layout: stages 1-3 flatten each param group
 * (decayed 2-D+ parameters, then non-decayed 1-D ones) and pad it to a multiple of the data-parallel size N,
 * so a partitioned buffer holds `paddedSize / N` elements of each group. Stage 0 does not pad.
 *
 * Communication buffers (gradient buckets, staging copies, step workspaces) are not model states and are
 * not counted here.
 */
import { isNoDecayParam } from '@zeroflow/core';
import { numel, type ParameterShape } from './model-shapes.js';

/** Training precision: fp32, or 16-bit parameters and gradients with fp32 master weights (amp). */
export type StatePrecision = 'fp32' | 'fp16' | 'bf16';

/** The optimizer families whose state sizes differ. */
export interface OptimizerStateSpec {
  /** `adam`, `adamw`, `lamb`: two fp32 moments; `sgd`: a momentum buffer when momentum > 0. */
  type: 'adam' | 'adamw' | 'lamb' | 'sgd';
  /** SGD only: momentum (0 keeps no state). */
  momentum?: number;
}

/** What the estimate depends on. */
export interface ModelStateInput {
  parameters: readonly ParameterShape[];
  stage: 0 | 1 | 2 | 3;
  /** Data-parallel ranks N. */
  dataParallelSize: number;
  precision: StatePrecision;
  optimizer: OptimizerStateSpec;
}

/** One flat param group: its elements and its padded length in the stage's layout. */
export interface GroupSize {
  name: 'decay' | 'no_decay';
  size: number;
  paddedSize: number;
}

/** Bytes per rank of each model-state category. */
export interface ModelStateBytes {
  params: number;
  grads: number;
  optimizer: number;
  total: number;
}

/** The estimate with what it was computed from. */
export interface ModelStateEstimate {
  /** Ψ: trainable parameter count. */
  psi: number;
  /** Ψ padded as the stage lays it out (the sum of the groups' padded sizes). */
  paddedPsi: number;
  groups: GroupSize[];
  stage: number;
  dataParallelSize: number;
  precision: StatePrecision;
  optimizer: string;
  /** Bytes per element of params, grads and optimizer state (the "k" of the ZeRO paper is `optimizer`). */
  bytesPerElement: { params: number; grads: number; optimizer: number };
  /** The formula in the ZeRO paper's notation, e.g. `4Ψ + 4Ψ/N + 8Ψ/N`. */
  formula: string;
  modelStateBytesPerRank: ModelStateBytes;
}

/** fp32 optimizer state bytes per element: moments, plus the fp32 master copy under amp. */
function optimizerBytesPerElement(precision: StatePrecision, opt: OptimizerStateSpec): number {
  const moments = opt.type === 'sgd' ? ((opt.momentum ?? 0) > 0 ? 4 : 0) : 8;
  return moments + (precision === 'fp32' ? 0 : 4);
}

/** Splits parameters into the two groups `initialize` builds (decayed, then not decayed) and pads them. */
export function paramGroupSizes(parameters: readonly ParameterShape[], alignTo: number): GroupSize[] {
  let decay = 0;
  let noDecay = 0;
  for (const p of parameters) {
    if (isNoDecayParam(p.name, p.shape)) noDecay += numel(p.shape);
    else decay += numel(p.shape);
  }
  const pad = (n: number) => Math.ceil(n / alignTo) * alignTo;
  return [
    { name: 'decay', size: decay, paddedSize: pad(decay) },
    { name: 'no_decay', size: noDecay, paddedSize: pad(noDecay) },
  ];
}

/** A term of the formula: `4Ψ`, `8Ψ/N`, or nothing for zero bytes. */
function term(bytes: number, partitioned: boolean): string | null {
  if (bytes === 0) return null;
  return `${bytes}Ψ${partitioned ? '/N' : ''}`;
}

/**
 * Model-state bytes per rank. Stage s partitions optimizer state from s >= 1, gradients from s >= 2 and
 * parameters at s = 3; each partitioned category holds `paddedPsi / N` elements per rank.
 */
export function estimateModelStates(input: ModelStateInput): ModelStateEstimate {
  const { stage, dataParallelSize: n, precision } = input;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`data-parallel size must be >= 1, got ${n}`);
  const groups = paramGroupSizes(input.parameters, stage === 0 ? 1 : n);
  const psi = groups.reduce((a, g) => a + g.size, 0);
  const paddedPsi = groups.reduce((a, g) => a + g.paddedSize, 0);
  const half = precision !== 'fp32';
  const per = {
    params: half ? 2 : 4,
    grads: half ? 2 : 4,
    optimizer: optimizerBytesPerElement(precision, input.optimizer),
  };
  const partitioned = { params: stage >= 3, grads: stage >= 2, optimizer: stage >= 1 };
  // Every group's padded size is a multiple of N once partitioned, so the division is exact.
  const bytes = (category: keyof typeof per) =>
    partitioned[category] ? (per[category] * paddedPsi) / n : per[category] * (stage === 0 ? psi : paddedPsi);
  const params = bytes('params');
  const grads = bytes('grads');
  const optimizer = bytes('optimizer');
  const terms = (['params', 'grads', 'optimizer'] as const)
    .map((c) => term(per[c], partitioned[c]))
    .filter((t): t is string => t !== null);
  return {
    psi,
    paddedPsi,
    groups,
    stage,
    dataParallelSize: n,
    precision,
    optimizer: input.optimizer.type === 'sgd' ? `sgd(momentum=${input.optimizer.momentum ?? 0})` : input.optimizer.type,
    bytesPerElement: per,
    formula: terms.join(' + ') || '0',
    modelStateBytesPerRank: { params, grads, optimizer, total: params + grads + optimizer },
  };
}
