/**
 * The 16-bit collectives amp relies on (DESIGN.md 5, 7), on both host backends: comm-shm (native reduce) and
 * comm-tcp (pure TS ring). Values are fractional, so a backend must widen, add in fp32 and round to nearest
 * even once per addition; at 2 ranks every element is one addition, whatever the algorithm, so the expected
 * result is exact. fp16 overflows to inf where the sum passes 65504; bf16 does not.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HalfFormat, roundInPlace } from '@zeroflow/core';
import { runRanks } from '@zeroflow/test-utils';
import { describe, expect, it } from 'vitest';

const script = join(__dirname, 'fixtures', 'half-collectives-rank.ts');
const N = 2;
const inputAt = (rank: number, i: number) => (i === 5 ? 40000 : ((i % 17) - 8) * 0.3137 + rank * 0.0721);
const round = (x: number, f: HalfFormat) => roundInPlace(Float32Array.of(x), f)[0];
/** As the fixture writes values: JSON has no Infinity. */
const json = (x: number) => (Number.isFinite(x) ? x : String(x));

describe.each(['shm', 'tcp'])('16-bit collectives over %s, 2 ranks', (backend) => {
  it('all-reduce, reduce-scatter and all-gather of fp16 and bf16 round each sum once, to nearest even', async () => {
    const dir = mkdtempSync(join(tmpdir(), `zf-half-${backend}-`));
    const exits = await runRanks(N, script, (r) => [join(dir, `r${r}.json`)], { ZEROFLOW_COMM: backend }, 120_000);
    for (const e of exits) expect(e.code, `rank ${e.rank} failed:\n${e.output}`).toBe(0);
    const L = 64 * N;
    for (const e of exits) {
      const out = JSON.parse(readFileSync(join(dir, `r${e.rank}.json`), 'utf8'));
      expect(out.backend).toBe(backend);
      for (const f of ['fp16', 'bf16'] as HalfFormat[]) {
        // inputs are rounded to 16 bits first, then each pair added in fp32 and rounded again
        const sum = (i: number) => round(round(inputAt(0, i), f) + round(inputAt(1, i), f), f);
        const full = Array.from({ length: L }, (_, i) => json(sum(i)));
        expect(out.results[`${f}/allReduce`]).toEqual(full);
        expect(out.results[`${f}/reduceScatter`]).toEqual(full.slice(e.rank * (L / N), (e.rank + 1) * (L / N)));
        const gathered = [0, 1].flatMap((q) => Array.from({ length: 64 }, (_, i) => round(inputAt(q, i), f)));
        expect(out.results[`${f}/allGather`]).toEqual(gathered);
      }
      expect(out.results['fp16/allReduce'][5]).toBe('Infinity');
      expect(out.results['bf16/allReduce'][5]).toBe(round(80000, 'bf16'));
    }
  }, 180_000);
});
