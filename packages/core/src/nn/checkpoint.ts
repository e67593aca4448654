import { tf } from '../tf.js';
import { executionContext, vjp, withExecutionContext } from './context.js';

/**
 * Activation checkpointing: runs `fn(...inputs)` without keeping its intermediate activations, and
 * recomputes them during backward (a `customGrad` forward is not taped, DESIGN.md section 4). Dropout masks
 * are replayed exactly: the generator state is saved before forward and restored for the recomputation.
 * Parameter gradients inside `fn` are delivered through the same hooks as without checkpointing.
 * `inputs` must be float tensors.
 */
export function checkpoint(fn: (...inputs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): tf.Tensor {
  const ctx = executionContext();
  const capture = ctx.capture;
  if (!capture) return fn(...inputs);
  const n = inputs.length;
  const rngBefore = ctx.rng.getState();
  const f = tf.customGrad(((...args: unknown[]) => {
    const xs = args.slice(0, n) as tf.Tensor[];
    (args[n + 1] as (ts: tf.Tensor[]) => void)(xs); // keep the inputs alive for the recomputation
    // No capture in forward: hooks fire in the recomputation only, once per use.
    const value = withExecutionContext({ capture: null }, () => fn(...xs));
    return {
      value,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const g = Array.isArray(dy) ? dy[0] : dy;
        const rngAfter = ctx.rng.getState();
        ctx.rng.setState(rngBefore);
        const innerAnchor = tf.scalar(0);
        try {
          // Uses were counted in forward: the recomputation must not count them again.
          const grads = withExecutionContext(
            { capture: { anchor: innerAnchor, onGrad: capture.onGrad }, onUse: null },
            () => vjp((all) => fn(...all.slice(0, n)), [...saved, innerAnchor], g),
          );
          grads[n].dispose();
          return [...grads.slice(0, n), tf.zerosLike(capture.anchor)];
        } finally {
          ctx.rng.setState(rngAfter);
          innerAnchor.dispose();
        }
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (f as (...t: tf.Tensor[]) => tf.Tensor)(...inputs, capture.anchor);
}
