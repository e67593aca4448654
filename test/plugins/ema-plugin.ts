/**
 * A plugin written outside core, using only `@zeroflow/core`'s public plugin interface: it keeps an
 * exponential moving average of the weights (as many training recipes do for evaluation) and records the
 * gradient norm of every step. It is what a user would write.
 */
import type { PluginContext, ZeroFlowPlugin } from '@zeroflow/core';
import { s } from '@zeroflow/core';

export interface EmaState {
  decay: number;
  shadow: Map<string, Float32Array>;
  gradNorms: number[];
  updates: number;
}

/** Creates the plugin; its config section `ema: { decay }` is validated by the schema it declares. */
export function emaPlugin(): ZeroFlowPlugin & { state: EmaState } {
  const state: EmaState = { decay: 0, shadow: new Map(), gradNorms: [], updates: 0 };
  let ctx: PluginContext | null = null;
  return {
    name: 'example-ema',
    version: '1.0.0',
    coreVersion: '^0.1.0',
    configSection: { key: 'ema', schema: s.object({ decay: s.number({ min: 0, lt: 1, default: 0.9 }) }) },
    state,
    setup(c) {
      ctx = c;
      state.decay = (c.config as unknown as { ema: { decay: number } }).ema.decay;
      for (const { name, param } of c.parameters) state.shadow.set(name, param.values());
    },
    hooks: {
      afterStep(info) {
        state.gradNorms.push(info.gradNorm);
        if (info.skipped || !ctx) return;
        state.updates++;
        for (const { name, param } of ctx.parameters) {
          const w = param.values();
          const sh = state.shadow.get(name)!;
          for (let i = 0; i < w.length; i++) sh[i] = state.decay * sh[i] + (1 - state.decay) * w[i];
        }
      },
      stateDict: () => ({ updates: state.updates }),
    },
  };
}
