/**
 * Checkpoints load at another world size and ZeRO stage (DESIGN.md section 8): saved by real ranks at one
 * layout, loaded by real ranks at another, the parameters and every optimizer state value must be exactly
 * the saved ones, and training goes on as the saving job did.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnRanks } from '@zeroflow/test-utils';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
/** A rank stuck this long is killed (and the test fails naming it). */
const TIMEOUT_MS = 120_000;
const script = join(here, 'fixtures', 'reshard-train.ts');
// The ZeRO plugins are resolved from the working directory (they are not dependencies of this package).
const pluginDir = join(here, '..', '..', 'packages', 'zero-stage2');

interface Layout {
  group: number;
  dpSize: number;
  shardSize: number;
  units: [number, number][];
  entries: [string, number, number][];
}
interface RankOut {
  rank: number;
  state: {
    meta: { type: string; groups: { step: number; buffers: string[] }[] };
    layout: Layout[];
    tensors: Record<string, number[]>;
  };
  weights: Record<string, number[]>;
  loss: number;
  globalSteps: number;
}

/** Runs the fixture on `n` ranks at `stage` from `cwd`; returns what each rank wrote. */
async function job(mode: string, n: number, stage: number, ckptDir: string): Promise<RankOut[]> {
  const outDir = mkdtempSync(join(tmpdir(), `zf-reshard-${mode}-`));
  const ranks = await spawnRanks(n, script, {
    cwd: pluginDir,
    args: (rank) => [mode, String(stage), ckptDir, join(outDir, `r${rank}.json`)],
    env: () => ({ ZEROFLOW_COMM: 'tcp' }),
    timeoutMs: TIMEOUT_MS,
  });
  for (const e of await ranks.outcomes) expect(e.code, `${mode} rank ${e.rank} failed:\n${e.output}`).toBe(0);
  return Array.from({ length: n }, (_, r) => JSON.parse(readFileSync(join(outDir, `r${r}.json`), 'utf8')) as RankOut);
}

/**
 * Every optimizer value by `buffer/parameter/element`, put back together from all ranks' shards element by
 * element: rank r's shard holds chunk r (`length / dpSize` elements) of every unit, in unit order.
 */
function optimizerValues(ranks: RankOut[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of ranks) {
    const { meta, layout, tensors } = r.state;
    layout.forEach((part, i) => {
      const owner = new Array<string | null>(part.units.reduce((a, [s, l]) => Math.max(a, s + l), 0)).fill(null);
      for (const [name, offset, size] of part.entries)
        for (let k = 0; k < size; k++) owner[offset + k] = `${name}/${k}`;
      for (const buffer of meta.groups[i].buffers) {
        const shard = tensors[`optimizer.group${i}.${buffer}`];
        let s = 0;
        for (const [start, length] of part.units) {
          const chunk = length / part.dpSize;
          const dpRank = part.dpSize === 1 ? 0 : r.rank;
          for (let k = 0; k < chunk; k++, s++) {
            const where = owner[start + dpRank * chunk + k];
            if (where) out.set(`${buffer}/${where}`, shard[s]);
          }
        }
        expect(s).toBe(shard.length);
      }
    });
  }
  return out;
}

function expectSameState(loaded: RankOut[], saved: RankOut[]): void {
  const want = optimizerValues(saved);
  const got = optimizerValues(loaded);
  // Adam's exp_avg and exp_avg_sq of every element of every parameter
  const numel = Object.values(saved[0].weights).reduce((a, w) => a + w.length, 0);
  expect(want.size).toBe(2 * numel);
  expect(got.size).toBe(want.size);
  for (const [k, v] of want) if (got.get(k) !== v) expect(got.get(k), k).toBe(v);
  expect(loaded[0].state.meta.groups.map((g) => g.step)).toEqual(saved[0].state.meta.groups.map((g) => g.step));
  for (const l of loaded) expect(l.weights).toEqual(saved[0].weights);
}

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
