/**
 * The resharding tests' shared parts: one job of the fixture (fixtures/reshard-train.ts) on real ranks, and
 * the element-by-element comparison of what loading ranks hold against what saving ranks saved.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnRanks } from '@zeroflow/test-utils';
import { expect } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
/** A rank stuck this long is killed (and the test fails naming it). */
const TIMEOUT_MS = 150_000;
const script = join(here, 'fixtures', 'reshard-train.ts');
// The ZeRO plugins are resolved from the working directory (they are not dependencies of this package):
// zero-stage2's folder resolves stages 1 and 2, zero-stage3's folder resolves itself.
const packages = join(here, '..', '..', 'packages');
const cwdFor = (stage: number) => join(packages, stage === 3 ? 'zero-stage3' : 'zero-stage2');

export interface Layout {
  dpSize: number;
  units: [number, number][];
  entries: [string, number, number][];
}
export interface RankOut {
  rank: number;
  state: {
    meta: { type: string; zeroStage?: number; groups: { step: number; buffers: string[] }[] };
    layout: Layout[];
    tensors: Record<string, number[]>;
  };
  weights: Record<string, number[]>;
  materialized: string[];
  loss: number;
  globalSteps: number;
}

/** Runs the fixture on `n` ranks at `stage`; returns what each rank wrote. A rank stuck for TIMEOUT_MS is killed and named. */
export async function job(mode: string, n: number, stage: number, ckptDir: string): Promise<RankOut[]> {
  const outDir = mkdtempSync(join(tmpdir(), `zf-reshard-${mode}-`));
  const ranks = await spawnRanks(n, script, {
    cwd: cwdFor(stage),
    args: (rank) => [mode, String(stage), ckptDir, join(outDir, `r${rank}.json`)],
    env: () => ({ ZEROFLOW_COMM: 'tcp', ZEROFLOW_COMM_TIMEOUT_MS: '60000' }),
    timeoutMs: TIMEOUT_MS,
  });
  for (const e of await ranks.outcomes)
    expect(
      e.code,
      `${mode} stage ${stage} rank ${e.rank} failed${e.signal ? ` (${e.signal}: stuck for ${TIMEOUT_MS / 1000} s, killed)` : ''}:\n${e.output}`,
    ).toBe(0);
  return Array.from({ length: n }, (_, r) => JSON.parse(readFileSync(join(outDir, `r${r}.json`), 'utf8')) as RankOut);
}

/**
 * Values of the sharded tensors named `tensor(group, buffer)` by `buffer/parameter/element`, put back
 * together from all ranks' shards element by element: rank r's shard holds chunk r (`length / dpSize`
 * elements) of every unit, in unit order (padding skipped).
 */
export function shardValues(
  ranks: RankOut[],
  buffers: (group: number) => string[],
  key: (group: number, buffer: string) => string,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of ranks) {
    r.state.layout.forEach((part, i) => {
      const owner = new Array<string | null>(part.units.reduce((a, [s, l]) => Math.max(a, s + l), 0)).fill(null);
      for (const [name, offset, size] of part.entries)
        for (let k = 0; k < size; k++) owner[offset + k] = `${name}/${k}`;
      for (const buffer of buffers(i)) {
        const shard = r.state.tensors[key(i, buffer)];
        expect(shard, `rank ${r.rank}: ${key(i, buffer)}`).toBeDefined();
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

const optimizerValues = (ranks: RankOut[]) =>
  shardValues(
    ranks,
    (i) => ranks[0].state.meta.groups[i].buffers,
    (i, b) => `optimizer.group${i}.${b}`,
  );

export function expectSameState(loaded: RankOut[], saved: RankOut[]): void {
  const want = optimizerValues(saved);
  const got = optimizerValues(loaded);
  // Adam's exp_avg and exp_avg_sq of every element of every parameter
  const numel = Object.values(saved[0].weights).reduce((a, w) => a + w.length, 0);
  expect(want.size).toBe(2 * numel);
  expect(got.size).toBe(want.size);
  let diffs = 0;
  for (const [k, v] of want) if (!Object.is(got.get(k), v)) diffs++;
  expect(diffs, 'optimizer values that differ from the saved ones').toBe(0);
  expect(loaded[0].state.meta.groups.map((g) => g.step)).toEqual(saved[0].state.meta.groups.map((g) => g.step));
  for (const l of loaded) {
    expect(l.weights).toEqual(saved[0].weights);
    expect(l.materialized, 'partitioned parameters left whole after loading').toEqual([]);
  }
}
