import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backwardWithHooks, ConfigError, manualSeed } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { batchAt, Regressor, trainDemo } from '../src/demo.js';
import { CSV_HEADER, gradNormLogger } from '../src/grad-norm-logger.js';

const baseConfig = {
  train_micro_batch_size_per_gpu: 16,
  gradient_clipping: 1.0,
  optimizer: { type: 'AdamW', params: { lr: 0.01, weight_decay: 0.01 } },
};

function readCsv(path: string): { header: string; rows: number[][] } {
  const [header, ...lines] = readFileSync(path, 'utf8').trim().split('\n');
  return { header, rows: lines.map((l) => l.split(',').map(Number)) };
}

/** The L2 norm of the gradient of the first batch's loss at the initial weights, computed without the engine. */
function firstStepNormByHand(): number {
  manualSeed(42); // the seed trainDemo builds its model with
  const model = new Regressor();
  let sumSq = 0;
  backwardWithHooks(
    () => model.loss(batchAt(0, 16)),
    (_p, g) => {
      for (const v of g.dataSync()) sumSq += v * v;
    },
  );
  model.dispose();
  return Math.sqrt(sumSq);
}

describe('grad_norm_logger, a user-written plugin', () => {
  it('writes one CSV row per `every` steps with the engine-reported global gradient norm', async () => {
    const output = join(mkdtempSync(join(tmpdir(), 'zf-gnl-')), 'sub', 'norms.csv');
    const reported: number[] = [];
    const { engine, losses } = await trainDemo({
      config: { ...baseConfig, grad_norm_logger: { every: 2, output } },
      steps: 6,
      plugins: [gradNormLogger()],
      onStep: (_s, _l, norm) => reported.push(norm),
    });
    await engine.close();
    const { header, rows } = readCsv(output);
    expect(header).toBe(CSV_HEADER);
    expect(rows.map((r) => r[0])).toEqual([2, 4, 6]);
    // the logged norms and losses are the ones the engine reported for those steps
    expect(rows.map((r) => r[1])).toEqual([reported[1], reported[3], reported[5]]);
    expect(rows.map((r) => r[2])).toEqual([losses[1], losses[3], losses[5]]);
    for (const r of rows) {
      expect(r[3]).toBeCloseTo(0.01, 8);
      expect(r[4]).toBe(0);
    }
    expect(losses[5]).toBeLessThan(losses[0]);
  });

  it('logs the true global gradient norm (before clipping), checked against a hand computation', async () => {
    const output = join(mkdtempSync(join(tmpdir(), 'zf-gnl-')), 'norms.csv');
    const { engine } = await trainDemo({
      config: { ...baseConfig, gradient_clipping: 0.01, grad_norm_logger: { every: 1, output } },
      steps: 1,
      plugins: [gradNormLogger()],
    });
    await engine.close();
    const { rows } = readCsv(output);
    expect(rows).toHaveLength(1);
    const expected = firstStepNormByHand();
    expect(expected).toBeGreaterThan(0.01); // so clipping was active, and the logged norm is the unclipped one
    expect(rows[0][1]).toBeCloseTo(expected, 4);
  });

  it('validates its config section with the schema it declares', async () => {
    const plugins = [gradNormLogger()];
    const bad = trainDemo({ config: { ...baseConfig, grad_norm_logger: { evry: 2 } }, steps: 1, plugins });
    await expect(bad).rejects.toBeInstanceOf(ConfigError);
    await expect(
      trainDemo({ config: { ...baseConfig, grad_norm_logger: { evry: 2 } }, steps: 1, plugins }),
    ).rejects.toThrow(/grad_norm_logger\.evry.*every/s);
    await expect(
      trainDemo({ config: { ...baseConfig, grad_norm_logger: { every: 0 } }, steps: 1, plugins: [gradNormLogger()] }),
    ).rejects.toThrow(/grad_norm_logger\.every/);
  });
});
