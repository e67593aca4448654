/**
 * ZeRO stage 3 with mixed precision (DESIGN.md sections 6-7), GPT tiny on real rank processes over tcp:
 *  - model states per rank: 2Ψ/N 16-bit parameters + 2Ψ/N 16-bit gradients + 4Ψ/N fp32 masters + 8Ψ/N Adam
 *    = 16Ψ/N at 1 and 2 ranks (fp32 gradient shards with `data_types.grad_accum_dtype: "fp32"`);
 *  - parameter all-gathers and gradient reduce-scatters carry half of fp32 stage 3's wire bytes;
 *  - stage 3 under bf16 trains like stage 2 under bf16; fp16 with dynamic scaling like fp32;
 *  - an fp16 overflow on one rank makes every rank skip; no tfjs tensor leaks per step; prefetch on/off
 *    and zeroInit give bit-identical results;
 *  - checkpoints hold the fp32 masters: bit-exact resume, and resharding to 1 rank stage 0 (bf16, fp32).
 * The fixture is test/fixtures/zero3-train.ts (global batch 8, GAS 2, clipping 0.5, AdamW).
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommsReport } from '@zeroflow/core';
import { relDiff, runRanks } from '@zeroflow/test-utils';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FixtureOptions } from './fixtures/zero3-train.js';

const script = join(__dirname, 'fixtures', 'zero3-train.ts');
const STEPS = 4;
const BF16 = { bf16: { enabled: true } };
const FP16 = { fp16: { enabled: true } };
/** Small threshold: the biases and LayerNorms stay whole, every matrix is partitioned. */
const ZERO = { stage3_param_persistence_threshold: 1000 };

interface Out {
  rank: number;
  losses: number[];
  norms: number[];
  skipped: boolean[];
  numTensors: number[];
  comms: CommsReport[];
  memory: Record<string, number>;
  stats: Record<string, number> | null;
  numel: number;
  sizes: number[];
  fullBytesAtBuild: number;
  fp32TensorsAfterInit: number;
  fp32TensorsAtEnd: number;
  skippedSteps: number;
  loaded: number[][] | null;
  saved: number[][] | null;
  weights: number[][] | null;
}

type Options = Partial<FixtureOptions>;

async function run(n: number, o: Options): Promise<Out[]> {
  const dir = mkdtempSync(join(tmpdir(), 'zf-amp3-'));
  const opts = { stage: 3, steps: STEPS, logComms: true, ...o, zero: { ...ZERO, ...(o.zero ?? {}) } };
  const exits = await runRanks(
    n,
    script,
    (r) => [join(dir, `r${r}.json`), JSON.stringify(opts)],
    { ZEROFLOW_COMM: 'tcp', ZEROFLOW_COMM_TIMEOUT_MS: '60000' },
    180_000,
  );
  for (const e of exits) expect(e.code, `rank ${e.rank} failed:\n${e.output}`).toBe(0);
  return exits.map((e) => JSON.parse(readFileSync(join(dir, `r${e.rank}.json`), 'utf8')) as Out);
}

/** Mean loss over ranks per step. */
function losses(out: Out[]): number[] {
  return out[0].losses.map((_, i) => out.reduce((a, o) => a + o.losses[i], 0) / out.length);
}

function maxAbsDiff(a: number[], b: number[]): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Model-state bytes: 16-bit parameter shard, gradient shard, fp32 masters, optimizer. */
function modelStates(m: Record<string, number>): number {
  return m.parameters + m.gradients + (m.masterWeights ?? 0) + m.optimizer;
}

/** Stage 3 pads each parameter to a multiple of N: Ψ of the padded layout. */
function paddedPsi(r: Out, n: number): number {
  return r.sizes.reduce((a, s) => a + Math.ceil(s / n) * n, 0);
}

/** Bytes per step of one collective (`all_gather`, `reduce_scatter`) at the last step. */
function wire(r: Out, op: string): number {
  const s = r.comms[r.comms.length - 1];
  if (!s) return 0; // one rank: no collectives
  return s.ops.find((o) => o.name === op)?.wireBytes ?? 0;
}

describe('ZeRO stage 3 with fp16/bf16', () => {
  const runs = new Map<string, Out[]>();

  beforeAll(async () => {
    // one job at a time: 2 cores shared with other tests
    runs.set('bf16/1', await run(1, { config: BF16 }));
    runs.set('bf16/2', await run(2, { config: BF16 }));
    runs.set('fp32/2', await run(2, {}));
    runs.set('fp16/2', await run(2, { config: FP16 }));
    runs.set('stage2-bf16/2', await run(2, { stage: 2, config: BF16 }));
    runs.set('bf16-noprefetch/2', await run(2, { config: BF16, zero: { stage3_prefetch_bucket_size: 0 } }));
    runs.set('bf16-fp32accum/2', await run(2, { config: { ...BF16, data_types: { grad_accum_dtype: 'fp32' } } }));
    const rows = [...runs].map(([k, out]) => {
      const m = out[0].memory;
      return `${k.padEnd(20)} params ${m.parameters} grads ${m.gradients} masters ${m.masterWeights ?? 0} optimizer ${m.optimizer} persistent ${m.persistentParameters ?? 0} total ${modelStates(m)} (Ψ = ${out[0].numel}) all_gather ${wire(out[0], 'all_gather')} B/step reduce_scatter ${wire(out[0], 'reduce_scatter')} B/step losses ${losses(
        out,
      )
        .map((l) => l.toFixed(5))
        .join(' ')}`;
    });
    console.log(rows.join('\n'));
  }, 900_000);

  for (const n of [1, 2]) {
    it(`bf16, ${n} rank(s): 2Ψ/N parameters + 2Ψ/N gradients + 4Ψ/N masters + 8Ψ/N Adam = 16Ψ/N`, () => {
      for (const r of runs.get(`bf16/${n}`)!) {
        const psi = paddedPsi(r, n);
        expect(r.memory.parameters).toBe((2 * psi) / n);
        expect(r.memory.gradients).toBe((2 * psi) / n);
        expect(r.memory.masterWeights).toBe((4 * psi) / n);
        expect(r.memory.optimizer).toBe((8 * psi) / n);
        const paper = (16 * r.numel) / n;
        expect(Math.abs(modelStates(r.memory) - paper) / paper).toBeLessThan(0.01);
        // persistent parameters: whole 16-bit copies (2 bytes each), their masters partitioned with the rest
        const persistent = r.sizes.filter((s) => s <= ZERO.stage3_param_persistence_threshold);
        expect(r.memory.persistentParameters).toBe(2 * persistent.reduce((a, s) => a + s, 0));
        expect(Math.abs(modelStates(r.memory) + r.memory.persistentParameters - paper) / paper).toBeLessThan(0.01);
        // no fp32 parameter tensor exists between steps: every weight is 16-bit or an fp32 master shard
        expect(r.fp32TensorsAfterInit).toBe(0);
        expect(r.fp32TensorsAtEnd).toBe(0);
      }
    });
  }

  it('grad_accum_dtype fp32: fp32 gradient shards (4Ψ/N), the rest unchanged', () => {
    const half = runs.get('bf16/2')![0].memory;
    const fp32 = runs.get('bf16-fp32accum/2')![0].memory;
    expect(fp32.gradients).toBe(2 * half.gradients);
    expect(fp32.parameters).toBe(half.parameters);
    expect(relDiff(losses(runs.get('bf16-fp32accum/2')!), losses(runs.get('bf16/2')!))).toBeLessThan(2e-3);
  });

  it('all-gathers and reduce-scatters move half of fp32 stage 3’s wire bytes per step', () => {
    const fp32 = runs.get('fp32/2')!;
    for (const precision of ['bf16', 'fp16']) {
      const half = runs.get(`${precision}/2`)!;
      for (let r = 0; r < 2; r++) {
        // gathers carry a 4-byte header either way (one fp32 id, or two 16-bit halves): just over one half
        const gather = wire(half[r], 'all_gather') / wire(fp32[r], 'all_gather');
        expect(gather).toBeGreaterThanOrEqual(0.5);
        expect(gather).toBeLessThan(0.505);
        expect(wire(half[r], 'reduce_scatter') / wire(fp32[r], 'reduce_scatter')).toBe(0.5);
      }
    }
  });

  it('stage 3 under bf16 trains like stage 2 under bf16 at 2 ranks, and like fp32', () => {
    const s3 = runs.get('bf16/2')!;
    const s2 = runs.get('stage2-bf16/2')!;
    const lossDiff = relDiff(losses(s3), losses(s2));
    const w3 = s3[0].weights!.flat();
    const w2 = s2[0].weights!.flat();
    console.log(
      `stage 3 vs stage 2 (bf16, 2 ranks): losses rel ${lossDiff.toExponential(2)}, weights rel ${relDiff(w3, w2).toExponential(2)}, largest weight difference ${maxAbsDiff(w3, w2).toExponential(2)}`,
    );
    expect(lossDiff).toBeLessThan(2e-3);
    expect(relDiff(w3, w2)).toBeLessThan(1e-2);
    expect(relDiff(losses(s3), losses(runs.get('fp32/2')!))).toBeLessThan(2e-3);
    // one process and two agree (the same global batch)
    expect(relDiff(losses(runs.get('bf16/1')!), losses(s3))).toBeLessThan(2e-3);
  });

  it('fp16 with dynamic loss scaling ends within 2% of fp32 stage 3’s loss', () => {
    const fp16 = losses(runs.get('fp16/2')!);
    const fp32 = losses(runs.get('fp32/2')!);
    expect(Math.abs(fp16[fp16.length - 1] - fp32[fp32.length - 1]) / fp32[fp32.length - 1]).toBeLessThan(0.02);
    expect(runs.get('fp16/2')![0].skipped.every((s) => !s)).toBe(true);
  });

  it('no tfjs tensor is leaked per step (tf.memory().numTensors stays flat)', () => {
    for (const [k, out] of runs)
      for (const r of out) expect(new Set(r.numTensors).size, `${k}: ${r.numTensors}`).toBe(1);
  });

  it('prefetch on or off: bit-identical losses and weights', () => {
    const on = runs.get('bf16/2')!;
    const off = runs.get('bf16-noprefetch/2')!;
    expect(on[0].stats!.prefetchHits).toBeGreaterThan(0);
    expect(off[0].stats!.prefetches).toBe(0);
    expect(off.map((r) => r.losses)).toEqual(on.map((r) => r.losses));
    expect(off[0].weights).toEqual(on[0].weights);
  });

  it('an fp16 overflow on rank 1 only makes both ranks skip the step', async () => {
    const out = await run(2, { config: FP16, blowUp: { rank: 1, step: 1 } });
    for (const r of out) {
      expect(r.skipped).toEqual([false, true, false, false]);
      expect(r.skippedSteps).toBe(1);
    }
    expect(out[0].norms).toEqual(out[1].norms);
  }, 300_000);

  it('zeroInit under bf16: no full fp32 weight at build, and the same training as a normal build', async () => {
    const out = await run(2, { config: BF16, build: 'zeroInit' });
    const persistentBytes = out[0].sizes.filter((s) => s <= 1000).reduce((a, s) => a + 4 * s, 0);
    for (const r of out) {
      expect(r.fullBytesAtBuild).toBe(persistentBytes);
      expect(r.fp32TensorsAfterInit).toBe(0);
    }
    // zeroInit draws rank 0's seed on every rank: the weights a normal build broadcasts from rank 0
    expect(out.map((r) => r.losses)).toEqual(runs.get('bf16/2')!.map((r) => r.losses));
  }, 300_000);

  it('checkpoints hold the fp32 masters: bit-exact resume, resharding to 1 rank stage 0 (bf16, fp32) and stage 3', async () => {
    const ckptDir = mkdtempSync(join(tmpdir(), 'zf-amp3-ckpt-'));
    const saved = await run(2, { mode: 'save', ckptDir, steps: 2, config: BF16 });
    const masters = saved[0].saved!;
    // fp32 values, not their 16-bit rounding
    const { roundInPlace } = await import('@zeroflow/core');
    const flat = Float32Array.from(masters.flat());
    expect(Array.from(roundInPlace(flat.slice(), 'bf16'))).not.toEqual(Array.from(flat));
    const resumed = await run(2, { mode: 'resume', ckptDir, steps: 2, config: BF16 });
    expect(resumed[0].loaded).toEqual(masters);
    expect(resumed.map((r) => r.losses)).toEqual(saved.map((r) => r.losses.slice(2)));
    expect(resumed[0].weights).toEqual(saved[0].weights);
    for (const config of [BF16, {}]) {
      const one = await run(1, { mode: 'resume', ckptDir, steps: 1, stage: 0, config });
      expect(one[0].loaded, JSON.stringify(config)).toEqual(masters);
    }
    // and at 1 rank, stage 3 under bf16 (the shards re-cut for N = 1)
    const three = await run(1, { mode: 'resume', ckptDir, steps: 1, config: BF16 });
    expect(three[0].loaded).toEqual(masters);
  }, 300_000);
});
