/**
 * ZeRO-3 checkpoints reshard like the others (DESIGN.md section 8): saved by real ranks at stage 3, they
 * load at another world size and stage with the parameters and every optimizer state value exactly as
 * saved (element by element, bit-identical), and checkpoints of stages 0-2 load at stage 3. A stage-3
 * checkpoint holds real shards (`params.group{i}` equal to the saved weights), and `zeroflow ckpt export`
 * turns it into consolidated safetensors with Hugging Face names.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '@zeroflow/cli';
import { readManifest, readSafetensorsFile } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { expectSameState, job, type RankOut, shardValues } from './reshard-helpers.js';

/** A stage-3 owner's `params.group{i}` shards hold exactly the full weights (real shards, not placeholders). */
function expectRealParamShards(ranks: RankOut[]): void {
  const shards = shardValues(
    ranks,
    () => ['params'],
    (i) => `params.group${i}`,
  );
  const numel = Object.values(ranks[0].weights).reduce((a, w) => a + w.length, 0);
  expect(shards.size).toBe(numel);
  let diffs = 0;
  for (const [name, w] of Object.entries(ranks[0].weights))
    w.forEach((v, k) => {
      if (!Object.is(shards.get(`params/${name}/${k}`), v)) diffs++;
    });
  expect(diffs).toBe(0);
}

const meanLoss = (ranks: RankOut[]) => ranks.reduce((a, r) => a + r.loss, 0) / ranks.length;

describe('resharding ZeRO-3 checkpoints', { timeout: 400_000 }, () => {
  const fromStage3 = mkdtempSync(join(tmpdir(), 'zf-ckpt-s3-'));
  let saved: RankOut[];

  it('saved by 4 ranks at stage 3: every rank writes its real parameter and optimizer shards', async () => {
    saved = await job('save', 4, 3, fromStage3);
    expect(saved[0].globalSteps).toBe(3);
    expect(saved[0].state.meta.zeroStage).toBe(3);
    expectRealParamShards(saved);
    const m = readManifest(fromStage3, 'saved');
    expect(m.world.zeroStage).toBe(3);
    const owners = m.files.filter((f) => f.kind === 'owner');
    expect(owners.map((f) => f.rank).sort()).toEqual([0, 1, 2, 3]);
    for (const f of owners) expect(Object.keys(f.tensors).filter((k) => k.startsWith('params.group'))).toHaveLength(2);
  });

  it('loads at 2 ranks, stage 2: weights and optimizer state exactly as saved; the next step matches', async () => {
    const loaded = await job('load', 2, 2, fromStage3);
    expectSameState(loaded, saved);
    expect(Math.abs(meanLoss(loaded) - meanLoss(saved))).toBeLessThan(1e-5);
  });

  it('loads at 1 rank, stage 0: exactly as saved; the next step matches', async () => {
    const loaded = await job('load', 1, 0, fromStage3);
    expectSameState(loaded, saved);
    expect(Math.abs(loaded[0].loss - meanLoss(saved))).toBeLessThan(1e-5);
  });

  it('loads at 2 ranks, stage 3 (another data-parallel size): exactly as saved, real shards', async () => {
    const loaded = await job('load', 2, 3, fromStage3);
    expectSameState(loaded, saved);
    expectRealParamShards(loaded);
    expect(Math.abs(meanLoss(loaded) - meanLoss(saved))).toBeLessThan(1e-5);
  });

  it('zeroflow ckpt export writes the stage-3 checkpoint as consolidated safetensors with HF names', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'zf-export3-')), 'model.safetensors');
    let stdout = '';
    let stderr = '';
    const code = await runCli(['ckpt', 'export', fromStage3, '--tag', 'saved', '--out', out, '--json'], {
      stdout: (t) => (stdout += t),
      stderr: (t) => (stderr += t),
    });
    expect(code, stderr).toBe(0);
    const names = Object.keys(saved[0].weights);
    expect(JSON.parse(stdout)).toMatchObject({ tag: 'saved', dtype: 'fp32', tensors: names.length });
    const file = readSafetensorsFile(out);
    expect([...file.tensors.keys()].sort()).toEqual([...names].sort());
    expect(file.tensors.has('transformer.h.1.mlp.c_fc.weight')).toBe(true);
    for (const [name, t] of file.tensors)
      expect(Array.from(t.data as Float32Array), name).toEqual(saved[0].weights[name]);
  });

  it('stage 1 at 2 ranks loads at 4 ranks, stage 3: exactly as saved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zf-ckpt-s1-'));
    const fromStage1 = await job('save', 2, 1, dir);
    const loaded = await job('load', 4, 3, dir);
    expectSameState(loaded, fromStage1);
    expectRealParamShards(loaded);
    expect(Math.abs(meanLoss(loaded) - meanLoss(fromStage1))).toBeLessThan(1e-5);
  });

  it('stage 0 at 1 rank loads at 2 ranks, stage 3; stage 2 at 2 ranks loads at 4 ranks, stage 3', async () => {
    const dir0 = mkdtempSync(join(tmpdir(), 'zf-ckpt-s0-'));
    const fromStage0 = await job('save', 1, 0, dir0);
    const loaded0 = await job('load', 2, 3, dir0);
    expectSameState(loaded0, fromStage0);
    expectRealParamShards(loaded0);
    const dir2 = mkdtempSync(join(tmpdir(), 'zf-ckpt-s2-'));
    const fromStage2 = await job('save', 2, 2, dir2);
    const loaded2 = await job('load', 4, 3, dir2);
    expectSameState(loaded2, fromStage2);
    expectRealParamShards(loaded2);
  });
});
