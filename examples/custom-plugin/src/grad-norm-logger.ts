/**
 * A plugin a user writes: it logs the global gradient norm of every N-th optimizer step to a CSV file. It
 * uses only `@zeroflow/core`'s public plugin interface (packages/core/docs/plugins.md):
 *  - it owns the config section `grad_norm_logger: { every, output }`, validated by the schema it declares
 *    (a misspelled key or a bad value is a ConfigError naming the path, like any core key);
 *  - `setup` reads its resolved section and the world (only rank 0 writes: the norm is already global);
 *  - `afterStep` receives `gradNorm`, the L2 norm of the reduced, unscaled gradients before clipping, from
 *    the gradient owner of whatever ZeRO stage runs, so the logger works unchanged under stage 0, 1, 2 or 3.
 * File I/O happens in `setup`/`afterStep`/`teardown`, the async phases; nothing here runs inside backward.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type PluginContext, s, type ZeroFlowPlugin } from '@zeroflow/core';

/** The plugin's config section, after validation and defaults. */
export interface GradNormLoggerConfig {
  /** Log every `every`-th optimizer step (1 = every step). */
  every: number;
  /** CSV path, relative to the working directory. Truncated when the job starts. */
  output: string;
}

/** Header of the CSV the plugin writes. */
export const CSV_HEADER = 'step,grad_norm,loss,lr,skipped';

/** The section's schema: `every` a positive integer (default 10), `output` a non-empty path. */
export const gradNormLoggerSchema = s.object({
  every: s.integer({ min: 1, default: 10 }),
  output: s.string({ minLength: 1, default: 'grad_norm.csv' }),
});

/** Creates the plugin. Register it with `initialize({ model, config, plugins: [gradNormLogger()] })`. */
export function gradNormLogger(): ZeroFlowPlugin & { readonly outputPath: () => string | null } {
  let ctx: PluginContext | null = null;
  let cfg: GradNormLoggerConfig | null = null;
  let path: string | null = null;
  // Appends are chained so that rows land in step order even if a write is slow.
  let pending: Promise<void> = Promise.resolve();

  return {
    name: 'example-grad-norm-logger',
    version: '1.0.0',
    coreVersion: '^0.1.0',
    configSection: { key: 'grad_norm_logger', schema: gradNormLoggerSchema },
    outputPath: () => path,
    async setup(c) {
      ctx = c;
      cfg = (c.config as unknown as { grad_norm_logger: GradNormLoggerConfig }).grad_norm_logger;
      if (c.world.rank !== 0) return;
      path = resolve(cfg.output);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, `${CSV_HEADER}\n`);
      c.log(`grad_norm_logger: every ${cfg.every} step(s) to ${path}`);
    },
    hooks: {
      afterStep(info) {
        if (!path || !cfg || !ctx || info.globalStep % cfg.every !== 0) return;
        const lr = ctx.optimizer.paramGroups[0]?.lr ?? Number.NaN;
        const row = `${info.globalStep},${info.gradNorm},${info.loss ?? ''},${lr},${info.skipped ? 1 : 0}\n`;
        const target = path;
        pending = pending.then(() => appendFile(target, row));
        return pending;
      },
      async teardown() {
        await pending;
      },
    },
  };
}
