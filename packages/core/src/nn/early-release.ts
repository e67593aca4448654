/**
 * Frees each backward node's saved activations and incoming gradients as soon as that node has run, as
 * PyTorch's autograd does. tfjs keeps both until the whole backward pass ends (its tape nodes hold their saved
 * tensors, and every intermediate gradient lives in backward's tidy scope), so at the end of backward a GPT's
 * process holds all its activations plus a gradient of every one of them: about twice PyTorch's peak.
 *
 * How: once the forward has been recorded, each tape node's `gradient` function is wrapped so that when the
 * next node's backward starts (tfjs has then called every thunk of this one: the last use of its output
 * gradients and saved tensors) they are disposed; the last node's are left to tfjs's own cleanup. Disposing a gradient tensor is only safe when no other slot of tfjs's gradient map holds
 * the same tensor object; a thunk may return a tensor it did not create (an identity's gradient returns dy
 * itself), so any returned object seen before, or saved by the node, is handed back as a clone (same data,
 * its own reference count).
 */
import { tf } from '../tf.js';

interface TapeNode {
  inputs: Record<string, tf.Tensor>;
  saved?: tf.Tensor[];
  gradient?: (dys: (tf.Tensor | null)[]) => Record<string, () => tf.Tensor>;
}

interface EngineState {
  activeTape: TapeNode[] | null;
  gradientDepth: number;
}

/**
 * Wraps the nodes of the tape being recorded (call at the end of the forward function passed to
 * `tf.grads`/`tf.valueAndGrads`, before it returns) so that backward frees what each node used right after
 * it. `seed` is the dy passed to tfjs (never disposed here: its owner disposes it). A no-op inside nested
 * gradient computations (higher-order gradients must keep their tape).
 */
export function releaseTapeAsBackwardRuns(seed: tf.Tensor | null): void {
  const state = (tf.engine() as unknown as { state: EngineState }).state;
  if (state.gradientDepth !== 1 || !state.activeTape) return;
  const seen = new Set<tf.Tensor>(seed ? [seed] : []);
  // tfjs runs one node at a time, calling the thunks of its inputs on the path (it prunes the others, so they
  // cannot be counted here) before the next node: the previous node is done when the next one starts.
  let releasePrevious: (() => void) | null = null;
  for (const node of state.activeTape) {
    const gradient = node.gradient;
    if (!gradient) continue;
    node.gradient = (dys) => {
      releasePrevious?.();
      const thunks = gradient(dys);
      releasePrevious = () => {
        for (const t of node.saved ?? []) t.dispose();
        node.saved = [];
        for (const dy of dys) if (dy && dy !== seed) dy.dispose();
      };
      const wrapped: Record<string, () => tf.Tensor> = {};
      for (const [name, thunk] of Object.entries(thunks)) {
        wrapped[name] = () => {
          const dx = thunk();
          if (!seen.has(dx) && !node.saved?.includes(dx) && !dys.includes(dx)) {
            seen.add(dx);
            return dx;
          }
          const copy = dx.clone();
          seen.add(copy);
          return copy;
        };
      }
      return wrapped;
    };
  }
}
