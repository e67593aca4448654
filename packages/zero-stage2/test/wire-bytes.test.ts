/**
 * Measured wire bytes per optimizer step (DESIGN.md section 6): GPT tiny, fp32, 2 real rank processes over
 * tcp, every collective counted by core's LoggedProcessGroup (the comms logger). With S = 4Ψ bytes of
 * gradients or parameters and n ranks, the ring algorithms put on the wire per rank and step:
 *  - stage 0: all-reduce, 2(n-1)/n · S;
 *  - stages 1 and 2: reduce-scatter (n-1)/n · S + all-gather (n-1)/n · S, the same total with each rank
 *    receiving only its shard of the gradient;
 *  - DeepSpeed's stage 1/2 (`reduce_scatter: false`): all-reduce + all-gather, 3(n-1)/n · S (3Ψ elements as
 *    n grows, against 2Ψ).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommsReport } from '@zeroflow/core';
import { runRanks } from '@zeroflow/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';

const script = join(__dirname, 'fixtures', 'wire-bytes-rank.ts');
const N = 2;
const STEPS = 3;

interface RankOut {
  rank: number;
  plugins: string[];
  numel: number;
  memory: Record<string, number>;
  setup: CommsReport;
  steps: CommsReport[];
  totals: CommsReport;
}

interface Case {
  label: string;
  stage: number;
  gas: number;
  zero?: Record<string, unknown>;
}

async function run(c: Case): Promise<RankOut[]> {
  const dir = mkdtempSync(join(tmpdir(), `zf-wire${c.stage}-`));
  const exits = await runRanks(
    N,
    script,
    (r) => [
      String(c.stage),
      String(STEPS),
      String(c.gas),
      join(dir, `r${r}.json`),
      c.zero ? JSON.stringify(c.zero) : '',
    ],
    { ZEROFLOW_COMM: 'tcp' },
    180_000,
  );
  for (const e of exits) expect(e.code, `rank ${e.rank} failed:\n${e.output}`).toBe(0);
  return exits.map((e) => JSON.parse(readFileSync(join(dir, `r${e.rank}.json`), 'utf8')) as RankOut);
}

/** Per-op figures of one step, and the step's totals. */
function byOp(r: CommsReport): Record<string, { calls: number; msgBytes: number; wireBytes: number }> {
  return Object.fromEntries(r.ops.map((o) => [o.name, o]));
}

const cases: Case[] = [
  { label: 'stage 0 (all-reduce)', stage: 0, gas: 1 },
  { label: 'stage 1 (reduce-scatter + all-gather)', stage: 1, gas: 1 },
  { label: 'stage 2 (reduce-scatter + all-gather)', stage: 2, gas: 1 },
  { label: 'stage 2, reduce_scatter: false (DeepSpeed)', stage: 2, gas: 1, zero: { reduce_scatter: false } },
  { label: 'stage 2, GAS 2 (reduces every micro-step)', stage: 2, gas: 2 },
];

describe('wire bytes per optimizer step, GPT tiny fp32, 2 ranks over tcp', () => {
  const results = new Map<string, RankOut[]>();

  beforeAll(async () => {
    // one job at a time: 2 cores shared with other tests
    for (const c of cases) results.set(c.label, await run(c));
    const psi = results.get(cases[0].label)![0].numel;
    const S = 4 * psi;
    const rows = [['case', 'op', 'calls/step', 'msg bytes/step', 'wire bytes/step', 'wire / S']];
    for (const c of cases) {
      const step = results.get(c.label)![0].steps[STEPS - 1];
      for (const o of [...step.ops, { name: 'TOTAL', ...step.total }])
        rows.push([
          c.label,
          o.name,
          String(o.calls),
          String(o.msgBytes),
          String(Math.round(o.wireBytes)),
          (o.wireBytes / S).toFixed(4),
        ]);
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    const table = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  ')).join('\n');
    console.log(`Ψ = ${psi} parameters, S = 4Ψ = ${S} bytes, n = ${N}, rank 0, last of ${STEPS} steps\n${table}`);
  }, 900_000);

  function stepsOf(label: string): { psi: number; S: number; steps: ReturnType<typeof byOp>[]; out: RankOut[] } {
    const out = results.get(label)!;
    const psi = out[0].numel;
    return { psi, S: 4 * psi, steps: out.flatMap((r) => r.steps.map(byOp)), out };
  }

  it('every rank counted every step the same; setup broadcast the model once (4Ψ); all ops completed', () => {
    for (const c of cases) {
      const { S, out } = stepsOf(c.label);
      for (const r of out) {
        expect(r.steps).toHaveLength(STEPS);
        expect(r.plugins).toContain('logged-comm');
        expect(byOp(r.setup).broadcast.msgBytes).toBe(S);
        expect(r.totals.total.completed).toBe(r.totals.total.calls);
        expect(r.steps.map((s) => s.total.wireBytes)).toEqual(out[0].steps.map((s) => s.total.wireBytes));
      }
    }
  });

  it('stage 0 all-reduces 2(n-1)/n · 4Ψ per step and nothing else of size', () => {
    const { S, steps } = stepsOf(cases[0].label);
    for (const s of steps) {
      expect(s.all_reduce.msgBytes).toBe(S);
      expect(s.all_reduce.wireBytes).toBe(((2 * (N - 1)) / N) * S);
      expect(s.reduce_scatter).toBeUndefined();
    }
  });

  for (const c of cases.slice(1, 3)) {
    it(`${c.label}: (n-1)/n · 4Ψ reduce-scattered + (n-1)/n · 4Ψ all-gathered, = stage 0 within 1%`, () => {
      const { S, steps } = stepsOf(c.label);
      const stage0 = stepsOf(cases[0].label).steps[0].all_reduce.wireBytes;
      for (const s of steps) {
        expect(s.all_reduce).toBeUndefined();
        // padding to a multiple of N per param group adds at most a few elements
        expect(s.reduce_scatter.wireBytes / (((N - 1) / N) * S)).toBeCloseTo(1, 2);
        // the gradient-norm all-gather (2 floats per rank) rides along with the parameter all-gather
        expect(s.all_gather.wireBytes / (((N - 1) / N) * S)).toBeCloseTo(1, 2);
        expect((s.reduce_scatter.wireBytes + s.all_gather.wireBytes) / stage0).toBeCloseTo(1, 2);
        // DeepSpeed's msg size is the output: each rank's shard for reduce-scatter, the full tensor for all-gather
        expect(s.reduce_scatter.msgBytes / (S / N)).toBeCloseTo(1, 2);
        expect(s.all_gather.msgBytes / S).toBeCloseTo(1, 2);
      }
    });
  }

  it('DeepSpeed-style all-reduce + all-gather costs 1.5x at n = 2 (3(n-1)/n · 4Ψ)', () => {
    const { S, steps } = stepsOf(cases[3].label);
    for (const s of steps) {
      expect(s.reduce_scatter).toBeUndefined();
      expect(s.all_reduce.wireBytes / (((2 * (N - 1)) / N) * S)).toBeCloseTo(1, 2);
      const total = s.all_reduce.wireBytes + s.all_gather.wireBytes;
      expect(total / (((3 * (N - 1)) / N) * S)).toBeCloseTo(1, 2);
    }
  });

  it('stage 2 reduce-scatters in every micro-step: GAS 2 doubles the reduce-scatter bytes', () => {
    const once = stepsOf(cases[2].label).steps[0];
    for (const s of stepsOf(cases[4].label).steps) {
      expect(s.reduce_scatter.wireBytes).toBe(2 * once.reduce_scatter.wireBytes);
      expect(s.all_gather.wireBytes).toBe(once.all_gather.wireBytes);
    }
  });
});
