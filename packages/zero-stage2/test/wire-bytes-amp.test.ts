/**
 * Measured wire bytes per optimizer step under mixed precision (DESIGN.md 6-7): the same GPT tiny job as
 * wire-bytes.test.ts, 2 ranks over tcp, every collective counted by core's LoggedProcessGroup. Gradients
 * are reduced and parameters all-gathered as 16-bit data, so with S16 = 2Ψ bytes each step moves half of
 * fp32's bytes: stage 0 all-reduces 2(n-1)/n · S16, stages 1 and 2 reduce-scatter (n-1)/n · S16 and
 * all-gather (n-1)/n · S16. Only the gradient-norm all-gather (2 fp32 values per rank) stays fp32.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommsReport } from '@zeroflow/core';
import { runRanks } from '@zeroflow/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';

const script = join(__dirname, 'fixtures', 'wire-bytes-rank.ts');
const N = 2;
const STEPS = 2;

interface RankOut {
  numel: number;
  memory: Record<string, number>;
  steps: CommsReport[];
}

async function run(stage: number, config: Record<string, unknown> | null): Promise<RankOut[]> {
  const dir = mkdtempSync(join(tmpdir(), `zf-wire-amp${stage}-`));
  const exits = await runRanks(
    N,
    script,
    (r) => [String(stage), String(STEPS), '1', join(dir, `r${r}.json`), '', config ? JSON.stringify(config) : ''],
    { ZEROFLOW_COMM: 'tcp' },
    180_000,
  );
  for (const e of exits) expect(e.code, `rank ${e.rank} failed:\n${e.output}`).toBe(0);
  return exits.map((e) => JSON.parse(readFileSync(join(dir, `r${e.rank}.json`), 'utf8')) as RankOut);
}

function byOp(r: CommsReport): Record<string, { calls: number; msgBytes: number; wireBytes: number }> {
  return Object.fromEntries(r.ops.map((o) => [o.name, o]));
}

describe('wire bytes per step with amp, GPT tiny, 2 ranks over tcp', () => {
  const results = new Map<string, RankOut[]>();

  beforeAll(async () => {
    results.set('fp32/2', await run(2, null));
    for (const stage of [0, 1, 2]) results.set(`bf16/${stage}`, await run(stage, { bf16: { enabled: true } }));
    results.set('fp16/2', await run(2, { fp16: { enabled: true } }));
    for (const [k, out] of results)
      console.log(`${k}: wire bytes/step ${out[0].steps[STEPS - 1].total.wireBytes} (Ψ = ${out[0].numel})`);
  }, 600_000);

  it('stage 0 all-reduces 16-bit gradients: 2(n-1)/n · 2Ψ per step', () => {
    for (const r of results.get('bf16/0')!) {
      const S16 = 2 * r.numel;
      for (const s of r.steps.map(byOp)) {
        expect(s.all_reduce.msgBytes).toBe(S16);
        expect(s.all_reduce.wireBytes).toBe(((2 * (N - 1)) / N) * S16);
      }
    }
  });

  for (const stage of [1, 2]) {
    it(`stage ${stage}: (n-1)/n · 2Ψ reduce-scattered + (n-1)/n · 2Ψ all-gathered per step`, () => {
      for (const r of results.get(`bf16/${stage}`)!) {
        const S16 = 2 * r.numel;
        for (const s of r.steps.map(byOp)) {
          expect(s.all_reduce).toBeUndefined();
          expect(s.reduce_scatter.wireBytes / (((N - 1) / N) * S16)).toBeCloseTo(1, 2);
          expect(s.all_gather.wireBytes / (((N - 1) / N) * S16)).toBeCloseTo(1, 2);
        }
      }
    });
  }

  it('stage 2: measured wire bytes per step and parameter + gradient bytes per rank are half of fp32', () => {
    const fp32 = results.get('fp32/2')!;
    for (const precision of ['bf16', 'fp16']) {
      const half = results.get(`${precision}/2`)!;
      for (let r = 0; r < N; r++) {
        for (let k = 0; k < STEPS; k++) {
          const ratio = half[r].steps[k].total.wireBytes / fp32[r].steps[k].total.wireBytes;
          expect(ratio, `${precision} rank ${r} step ${k}`).toBeCloseTo(0.5, 3);
        }
        const m16 = half[r].memory;
        const m32 = fp32[r].memory;
        expect((m16.parameters + m16.gradients) / (m32.parameters + m32.gradients)).toBe(0.5);
        // the bucket buffers hold 16-bit gradients too
        expect(m16.communication / m32.communication).toBe(0.5);
      }
    }
  });
});
