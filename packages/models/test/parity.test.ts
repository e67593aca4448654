/**
 * Parity with the PyTorch reference fixtures (shared/fixtures/README.md): logits, loss and every weight
 * gradient must match to relative L2 error <= 1e-4 (an exact implementation gets ~1e-5).
 * Fixture folders: ZEROFLOW_PARITY_FIXTURES (comma-separated) or <repo root>/../shared/fixtures/{gpt2-tiny,llama-tiny}.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
// Until core's index re-exports io/, read safetensors from core's source.
import { readSafetensors } from '../../core/src/io/index.js';
import { loadHFStateDict, modelFromHFConfig } from '../src/index.js';
import { hookedGradients, relL2, repoRoot } from './helpers.js';

const TOLERANCE = 1e-4;

function fixtureFolders(): string[] {
  const fromEnv = process.env.ZEROFLOW_PARITY_FIXTURES;
  if (fromEnv?.trim()) {
    return fromEnv
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((s) => path.resolve(s));
  }
  const shared = path.resolve(repoRoot(), '..', 'shared', 'fixtures');
  return [path.join(shared, 'gpt2-tiny'), path.join(shared, 'llama-tiny')];
}

function float32(map: Map<string, { data: unknown }>, name: string, folder: string): Float32Array {
  const t = map.get(name);
  if (!t) throw new Error(`${folder}/expected.safetensors has no "${name}"`);
  return t.data as Float32Array;
}

describe('parity with the PyTorch reference', () => {
  for (const folder of fixtureFolders()) {
    it(`${path.basename(folder)}: logits, loss and every gradient within ${TOLERANCE}`, () => {
      const required = ['config.json', 'model.safetensors', 'inputs.json', 'expected.safetensors'];
      const missing = required.filter((f) => !fs.existsSync(path.join(folder, f)));
      if (missing.length) {
        throw new Error(
          `parity fixture folder ${folder} lacks ${missing.join(', ')}: put the fixtures there (see shared/fixtures/README.md) or set ZEROFLOW_PARITY_FIXTURES`,
        );
      }
      const config = JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8'));
      const inputIds: number[][] = JSON.parse(fs.readFileSync(path.join(folder, 'inputs.json'), 'utf8')).input_ids;
      const expected = readSafetensors(path.join(folder, 'expected.safetensors'));

      const model = modelFromHFConfig(config);
      loadHFStateDict(model, readSafetensors(path.join(folder, 'model.safetensors')));
      model.eval(); // fixtures use no dropout; eval makes that explicit

      const ids = tf.tensor2d(inputIds, undefined, 'int32');
      const logits = model.forward(ids);
      const logitsErr = relL2(logits.dataSync() as Float32Array, float32(expected, 'logits', folder));
      logits.dispose();

      const { loss, grads } = hookedGradients(() => model.loss({ inputIds: ids }));
      ids.dispose();
      const wantLoss = float32(expected, 'loss', folder)[0];
      const lossErr = Math.abs(loss - wantLoss) / Math.abs(wantLoss);

      const gradErrs: [string, number][] = model.namedParameters().map(([name]) => {
        const got = grads.get(name);
        if (!got) throw new Error(`no gradient reached parameter "${name}"`);
        return [name, relL2(got, float32(expected, `grad.${name}`, folder))];
      });
      const expectedGradNames = [...expected.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
      expect(new Set(gradErrs.map(([n]) => n))).toEqual(new Set(expectedGradNames));

      const worst = gradErrs.reduce((a, b) => (b[1] > a[1] ? b : a));
      console.log(
        `[parity ${path.basename(folder)}] logits ${logitsErr.toExponential(2)}, loss ${lossErr.toExponential(2)} ` +
          `(${loss.toFixed(6)} vs ${wantLoss.toFixed(6)}), ${gradErrs.length} gradients: worst ${worst[1].toExponential(2)} (${worst[0]})`,
      );
      expect(logitsErr).toBeLessThanOrEqual(TOLERANCE);
      expect(lossErr).toBeLessThanOrEqual(TOLERANCE);
      for (const [name, err] of gradErrs) expect(err, name).toBeLessThanOrEqual(TOLERANCE);
      model.dispose();
    });
  }
});
