/**
 * `@zeroflow/zero-stage2`: ZeRO stage 2 (optimizer state and gradients partitioned between data-parallel ranks) as a
 * ZeroFlow plugin. Core loads it by name when `zero_optimization.stage` is 2.
 */
import type { ZeroFlowPlugin } from '@zeroflow/core';
import { PACKAGE_NAME, Stage2Owner } from './stage2-owner.js';

export { PACKAGE_NAME, Stage2Owner } from './stage2-owner.js';

/** This package's version. */
export const VERSION = '0.1.0';

/** Creates the stage-2 plugin: it owns gradient reduction and the optimizer step. */
export function createPlugin(): ZeroFlowPlugin {
  return {
    name: PACKAGE_NAME,
    version: VERSION,
    coreVersion: '^0.1.0',
    // `comm` is needed only when data_parallel_size > 1; the owner checks it and names the fix.
    provides: ['optimizer-step'],
    // After the comm plugin (a normal plugin) has set up and offered its ProcessGroup.
    enforce: 'post',
    createGradientOwner: (ctx, optimizer) => new Stage2Owner(ctx, optimizer),
  };
}

/** The plugin, ready to pass to `initialize({ plugins: [plugin] })`. */
export const plugin: ZeroFlowPlugin = createPlugin();
export default plugin;
