/**
 * Optimizers over flat Float32Array buffers. tfjs's optimizers key state by variable name and cannot work
 * on shards (DESIGN.md section 4); ZeroFlow's work on whatever contiguous slice a rank owns.
 */

/** Hyperparameters of one parameter group. Schedulers write `lr` (and `betas[0]`/`momentum` for OneCycle). */
export interface ParamGroupOptions {
  lr: number;
  weight_decay: number;
  /** Adam/AdamW/Lamb: divide the moments by (1 - beta^step) as torch does (DeepSpeed's group key; default true). */
  bias_correction?: boolean;
  /** Adam/AdamW/Lamb */
  betas?: [number, number];
  eps?: number;
  /** SGD */
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  /** Lamb trust-ratio clamp (DeepSpeed's max_coeff/min_coeff). */
  max_coeff?: number;
  min_coeff?: number;
}

/** A named tensor's place inside a flat group buffer (Lamb computes one trust ratio per segment). */
export interface FlatSegment {
  name: string;
  offset: number;
  length: number;
}

/**
 * The buffers of one parameter group that this rank updates: `params` is updated in place from `grads`.
 * Both have the same length (a ZeRO partition or the whole group). `segments` cover [0, length) in order.
 */
export interface FlatGroupBuffers {
  params: Float32Array;
  grads: Float32Array;
  segments?: FlatSegment[];
  /**
   * The gradient is `fround(grads[i] * gradScale)` (default 1): gradient clipping deferred to the update,
   * which saves the owner a pass over the gradients. Same bits as scaling `grads` in place first.
   */
  gradScale?: number;
}

/** Serializable optimizer state: per group, named Float32Arrays (e.g. exp_avg) plus scalar counters. */
export interface OptimizerStateDict {
  type: string;
  groups: { options: ParamGroupOptions; step: number; buffers: Record<string, Float32Array> }[];
}

/** An optimizer over flat buffers; `paramGroups[i]` describes `buffers[i]` of every `step` call. */
export interface FlatOptimizer {
  readonly type: string;
  readonly paramGroups: ParamGroupOptions[];
  /** One update of every group; the buffer lengths must not change between calls. */
  step(buffers: FlatGroupBuffers[]): void;
  stateDict(): OptimizerStateDict;
  loadStateDict(state: OptimizerStateDict): void;
  /** Bytes of state held (moments, momentum...), without copying it as `stateDict` does. */
  stateBytes?(): number;
}

/**
 * Bytes of an optimizer's state: its `stateBytes()`, else summed over a `stateDict()` (a copy: avoid in
 * memory reports of optimizers that can say it directly).
 */
export function optimizerStateBytes(optimizer: FlatOptimizer): number {
  if (optimizer.stateBytes) return optimizer.stateBytes();
  let bytes = 0;
  for (const g of optimizer.stateDict().groups) for (const v of Object.values(g.buffers)) bytes += v.byteLength;
  return bytes;
}

/** A learning-rate scheduler bound to an optimizer's param groups (DeepSpeed semantics). */
export interface LRScheduler {
  readonly type: string;
  /** Advances one step (call after each optimizer step) and writes the new lr into the param groups. */
  step(): void;
  /** Current lr of each param group. */
  getLr(): number[];
  stateDict(): Record<string, unknown>;
  loadStateDict(state: Record<string, unknown>): void;
}
