import { tf } from '../tf.js';
import { releaseTapeAsBackwardRuns } from './early-release.js';
import type { Module } from './module.js';
import type { Parameter } from './parameter.js';
import { Generator } from './rng.js';

/**
 * THE hook point of every parameter use (DESIGN.md sections 3-4). Leaf layers never read `Parameter.tensor`
 * directly: they call `runLeaf`, which asks the active `ParameterAccess` for the weights (a plugin may gather
 * ZeRO-3 shards, widen 16-bit storage, or slice tensor-parallel shards) and, while gradients are being
 * computed, wraps each weight in an identity `customGrad` whose gradient function hands the weight's
 * gradient to `onGrad` the moment backward produces it (ZeRO-2 buckets start reducing from there).
 */
export interface ParameterAccess {
  /** fp32 weights for one leaf's computation, in the order of `params`. */
  acquire(params: Parameter[], leaf: Module): tf.Tensor[];
  /** The leaf is done with the weights returned by `acquire` (ZeRO-3 frees gathered copies here). */
  release?(params: Parameter[], weights: tf.Tensor[], leaf: Module): void;
  /**
   * When true, a leaf's forward is not taped: its weights are released right after forward and acquired
   * again in backward to recompute the leaf's local gradient (ZeRO-3 gathers weights twice, as DeepSpeed).
   */
  readonly recomputeLeaves?: boolean;
}

/** Where gradients go while `backwardWithHooks` runs. */
export interface GradientCapture {
  /** Scalar that every hooked weight depends on, so that tfjs's tape reaches each parameter use. */
  anchor: tf.Tensor;
  /** Receives d(scaled loss)/d(weight) once per use; a tied weight used twice is reported twice (sum them). */
  onGrad(p: Parameter, grad: tf.Tensor): void;
}

/** The default access: the parameter's own materialized fp32 tensor. */
export const materializedAccess: ParameterAccess = {
  acquire(params) {
    return params.map((p) => {
      if (!p.tensor)
        throw new Error(`Parameter ${p.name || '(unnamed)'} is not materialized and no plugin supplies it`);
      return p.tensor;
    });
  },
};

interface ExecutionContext {
  access: ParameterAccess;
  capture: GradientCapture | null;
  /** Drives dropout; checkpointing saves and restores it to replay the same masks. */
  rng: Generator;
  /**
   * Called once per parameter use in forward whose gradient backward will deliver later, so that a
   * gradient owner knows when a parameter's gradient is complete (a tied weight is used twice) and can
   * reduce its bucket while the rest of backward runs.
   */
  onUse: ((p: Parameter) => void) | null;
}

let current: ExecutionContext = { access: materializedAccess, capture: null, rng: new Generator(0), onUse: null };

/** The active context (for plugins and layers). */
export function executionContext(): Readonly<ExecutionContext> {
  return current;
}

/** Runs `fn` with some fields of the execution context replaced. */
export function withExecutionContext<T>(patch: Partial<ExecutionContext>, fn: () => T): T {
  const prev = current;
  current = { ...current, ...patch };
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/**
 * The weight as an identity of the anchor only: tfjs then never computes nor keeps a gradient for the weight
 * tensor itself (it is not an input of the node), and the gradient handed to `onGrad` can be freed right
 * after (releaseTapeAsBackwardRuns) instead of living until backward ends.
 */
function hookWeight(w: tf.Tensor, capture: GradientCapture, p: Parameter): tf.Tensor {
  const f = tf.customGrad(((anchor: tf.Tensor) => ({
    value: w.clone(),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
      capture.onGrad(p, Array.isArray(dy) ? dy[0] : dy);
      return [tf.zerosLike(anchor)];
    },
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(capture.anchor) as tf.Tensor;
}

/**
 * A leaf's vector-Jacobian product written out: the gradients of its inputs, then of its weights, for the
 * output gradient `dy`. With it, a recomputing access (ZeRO-3) gathers the weights again in backward but does
 * not re-run the leaf's forward (a Linear's recomputed matmul is a third of its FLOPs).
 */
export type LeafBackward = (inputs: tf.Tensor[], weights: tf.Tensor[], dy: tf.Tensor) => tf.Tensor[];

/**
 * Runs one leaf layer's computation `compute(weights)` through the hook point. Every parameter use in
 * ZeroFlow goes through here. `backward`, when given, must equal tfjs's gradient of `compute`.
 */
export function runLeaf<T extends tf.Tensor>(
  leaf: Module,
  params: Parameter[],
  inputs: tf.Tensor[],
  compute: (inputs: tf.Tensor[], weights: tf.Tensor[]) => T,
  backward?: LeafBackward,
): T {
  const { access, capture } = current;
  if (capture && access.recomputeLeaves)
    return recomputedLeaf(leaf, params, inputs, compute, access, capture, backward);
  const weights = access.acquire(params, leaf);
  if (current.onUse) for (const p of params) if (p.requiresGrad) current.onUse(p);
  try {
    const used = capture
      ? weights.map((w, i) => (params[i].requiresGrad ? hookWeight(w, capture, params[i]) : w))
      : weights;
    return compute(inputs, used);
  } finally {
    access.release?.(params, weights, leaf);
  }
}

/** Saves and restores tfjs's active tape around a nested `tf.grads` inside a gradient function (DESIGN 4). */
export function withSavedTape<T>(fn: () => T): T {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown } }).state;
  const saved = state.activeTape;
  try {
    return fn();
  } finally {
    state.activeTape = saved;
  }
}

/**
 * Gradients of `compute` at `inputs`/`weights` for cotangent `dy`, delivering weight gradients to the
 * capture and returning input gradients. Shared by leaf recomputation and activation checkpointing.
 */
export function vjp(fn: (xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
  return withSavedTape(() => tf.grads((...a: tf.Tensor[]) => fn(a))(xs, dy));
}

function recomputedLeaf<T extends tf.Tensor>(
  leaf: Module,
  params: Parameter[],
  inputs: tf.Tensor[],
  compute: (inputs: tf.Tensor[], weights: tf.Tensor[]) => T,
  access: ParameterAccess,
  capture: GradientCapture,
  backward?: LeafBackward,
): T {
  const n = inputs.length;
  const onUse = current.onUse;
  if (onUse) for (const p of params) if (p.requiresGrad) onUse(p);
  const f = tf.customGrad(((...args: unknown[]) => {
    const xs = args.slice(0, n) as tf.Tensor[];
    (args[n + 1] as (ts: tf.Tensor[]) => void)(xs); // keep the inputs alive for backward
    const weights = access.acquire(params, leaf);
    let value: T;
    try {
      value = compute(xs, weights);
    } finally {
      access.release?.(params, weights, leaf);
    }
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const g = Array.isArray(dy) ? dy[0] : dy;
        const ws = access.acquire(params, leaf);
        try {
          const grads = backward
            ? backward(saved, ws, g)
            : vjp((all) => compute(all.slice(0, n), all.slice(n)), [...saved, ...ws], g);
          params.forEach((p, i) => {
            if (p.requiresGrad) capture.onGrad(p, grads[n + i]);
          });
          return [...grads.slice(0, n), tf.zerosLike(capture.anchor)];
        } finally {
          access.release?.(params, ws, leaf);
        }
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (f as (...t: tf.Tensor[]) => T)(...inputs, capture.anchor);
}

/** Result of one forward+backward. */
export interface BackwardResult {
  /** The unscaled loss value. */
  loss: number;
}

/**
 * Runs `lossFn` (forward) and backward with every parameter gradient delivered to `onGrad` as soon as it is
 * ready. `gradScale` multiplies the cotangent (1/GAS times the loss scale), so gradients arrive scaled.
 */
export function backwardWithHooks(
  lossFn: () => tf.Scalar,
  onGrad: (p: Parameter, grad: tf.Tensor) => void,
  opts: { gradScale?: number; access?: ParameterAccess; rng?: Generator; onUse?: (p: Parameter) => void } = {},
): BackwardResult {
  const anchor = tf.scalar(0);
  const dy = tf.scalar(opts.gradScale ?? 1);
  try {
    const patch: Partial<ExecutionContext> = { capture: { anchor, onGrad }, onUse: opts.onUse ?? null };
    if (opts.access) patch.access = opts.access;
    if (opts.rng) patch.rng = opts.rng;
    return withExecutionContext(patch, () => {
      const forward = () => {
        const loss = lossFn();
        releaseTapeAsBackwardRuns(dy);
        return loss;
      };
      const { value, grads } = tf.valueAndGrads((_a: tf.Tensor) => forward())([anchor], dy);
      const loss = value.dataSync()[0];
      value.dispose();
      tf.dispose(grads);
      return { loss };
    });
  } finally {
    anchor.dispose();
    dy.dispose();
  }
}
