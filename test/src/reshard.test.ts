/**
 * Checkpoints load at another world size and ZeRO stage (DESIGN.md section 8): saved by real ranks at one
 * layout, loaded by real ranks at another, the parameters and every optimizer state value must be exactly
 * the saved ones, and training goes on as the saving job did.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectSameState, job, type RankOut } from './reshard-helpers.js';

describe('resharding checkpoints between world sizes and ZeRO stages', () => {
  const fromStage2 = mkdtempSync(join(tmpdir(), 'zf-ckpt-s2-'));
  let saved: RankOut[];

  it('saved by 2 ranks at stage 2', async () => {
    saved = await job('save', 2, 2, fromStage2);
    expect(saved[0].globalSteps).toBe(3);
  });

  it('loads at 1 rank, stage 0: weights and optimizer state exactly as saved; the next step matches', async () => {
    const loaded = await job('load', 1, 0, fromStage2);
    expectSameState(loaded, saved);
    expect(Math.abs(loaded[0].loss - (saved[0].loss + saved[1].loss) / 2)).toBeLessThan(1e-5);
  });

  it('loads at 2 ranks, stage 1: exactly as saved; the next step matches', async () => {
    const loaded = await job('load', 2, 1, fromStage2);
    expectSameState(loaded, saved);
    for (const r of [0, 1]) expect(Math.abs(loaded[r].loss - saved[r].loss)).toBeLessThan(1e-5);
  });

  it('saved by 1 rank at stage 0, loads at 2 ranks, stage 2', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zf-ckpt-s0-'));
    const fromStage0 = await job('save', 1, 0, dir);
    const loaded = await job('load', 2, 2, dir);
    expectSameState(loaded, fromStage0);
  });
});
