/**
 * Mixed precision side by side: for ZeRO stages 0, 1, 2, 3 at 1 and 2 ranks, fp32 vs bf16 vs fp16, real rank
 * processes train the GPT `tiny` preset (zero-shared.ts; AdamW, micro-batch 8 per rank) and report per rank:
 * model-state bytes (engine.memoryReport(): parameters + gradients + master weights + optimizer) next to
 * DESIGN.md 6's formula (fp32: 16Ψ, 8Ψ + 8Ψ/N, 4Ψ + 12Ψ/N, 16Ψ/N; amp: 16Ψ, 4Ψ + 12Ψ/N, 2Ψ + 14Ψ/N,
 * 16Ψ/N; stage 3 adds its persistent parameters, kept whole on every rank), the wire
 * bytes per optimizer step counted by core's comms logger, and tokens/s of the whole job (a step takes as long
 * as its slowest rank). Writes the `amp` section of RESULTS.md and results/amp.json.
 *
 * Usage: node --import tsx amp.ts [--quick] [--stages 0,1,2,3] [--ranks 1,2] [--precisions fp32,bf16,fp16]
 *                                 [--steps 4] [--warmup 1] [--backend shm|tcp] [--dry-run]
 *   --quick: stages 0, 2 and 3, 2 ranks, fp32 and bf16, 1 measured step after 1 warm-up step (6 jobs, about
 *   a minute on 2 idle cores). Without it: every stage, rank count and precision, 4 measured steps.
 *   --dry-run: print the table, write neither RESULTS.md nor results/amp.json.
 * The same file is the rank process when ZF_AMP_RANK is set (spawned by the parent with the PyTorch env).
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ZeroFlowPlugin } from '@zeroflow/core';
import { machineLine, stats, writeJson, writeSection } from './results-file.js';
import { runRankJob } from './spawn-ranks.js';
import { syntheticBatch } from './synthetic-batch.js';
import { loadZeroPackage, PRESETS } from './zero-shared.js';

const PREFIX = '@@amp ';
/** `stage3_param_persistence_threshold` of the stage-3 rows. */
const STAGE3_PERSISTENCE = 1000;
type Precision = 'fp32' | 'bf16' | 'fp16';

/** One rank's report. */
interface AmpRankResult {
  rank: number;
  params: number;
  tokensPerStep: number;
  seconds: number[];
  memory: Record<string, number>;
  /** Wire bytes of the measured steps, divided by their count. */
  wireBytesPerStep: number;
}

/** `@zeroflow/amp` by name, else the workspace build (this folder does not declare it). */
async function loadAmp(): Promise<Record<string, unknown>> {
  const name = '@zeroflow/amp';
  try {
    return (await import(name)) as Record<string, unknown>;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw e;
  }
  const built = join(import.meta.dirname, '..', 'packages', 'amp', 'dist', 'index.mjs');
  if (!existsSync(built)) throw new Error(`${name} is neither a dependency of benchmarks nor built at ${built}`);
  return (await import(pathToFileURL(built).href)) as Record<string, unknown>;
}

async function rankMain(): Promise<void> {
  await import('@zeroflow/backend-native');
  const { initialize, manualSeed } = await import('@zeroflow/core');
  const { GPT } = await import('@zeroflow/models');
  const env = (k: string, d: number) => Number(process.env[k] ?? d);
  const rank = env('RANK', 0);
  const worldSize = env('WORLD_SIZE', 1);
  const stage = env('ZF_AMP_STAGE', 0);
  const precision = (process.env.ZF_AMP_PRECISION ?? 'fp32') as Precision;
  const warmup = env('ZF_AMP_WARMUP', 1);
  const steps = env('ZF_AMP_STEPS', 4);
  const preset = PRESETS.tiny;
  // passed explicitly: core would import them by name from this folder, which does not declare them
  const plugins: ZeroFlowPlugin[] = [];
  if (stage > 0) plugins.push((await loadZeroPackage(stage)).plugin as ZeroFlowPlugin);
  if (precision !== 'fp32') plugins.push(((await loadAmp()).createPlugin as () => ZeroFlowPlugin)());
  manualSeed(1);
  const model = new GPT(preset);
  const params = model.namedParameters().reduce((a, [, p]) => a + p.size, 0);
  const engine = await initialize({
    model,
    plugins,
    config: {
      train_micro_batch_size_per_gpu: preset.micro,
      gradient_accumulation_steps: 1,
      optimizer: { type: 'AdamW', params: { lr: 1e-3, weight_decay: 0.1 } },
      // stage 3: matrices partitioned, biases and norms whole (DeepSpeed's default 1e5 keeps all of tiny whole)
      zero_optimization: stage === 3 ? { stage, stage3_param_persistence_threshold: STAGE3_PERSISTENCE } : { stage },
      ...(precision === 'fp32' ? {} : { [precision]: { enabled: true } }),
      comms_logger: { enabled: worldSize > 1 },
      steps_per_print: 1_000_000,
    },
  });
  const wire = () => engine.commsReport()?.total.wireBytes ?? 0;
  const seconds: number[] = [];
  let wireAtWarmup = 0;
  for (let s = 0; s < warmup + steps; s++) {
    if (s === warmup) wireAtWarmup = wire();
    const batch = syntheticBatch(preset.micro, preset.blockSize, preset.vocabSize, s * worldSize + rank);
    const t0 = performance.now();
    engine.backward(() => model.loss(batch));
    await engine.step();
    if (s >= warmup) seconds.push((performance.now() - t0) / 1000);
  }
  const result: AmpRankResult = {
    rank,
    params,
    tokensPerStep: preset.micro * preset.blockSize,
    seconds,
    memory: engine.memoryReport(),
    wireBytesPerStep: (wire() - wireAtWarmup) / steps,
  };
  process.stdout.write(`${PREFIX}${JSON.stringify(result)}\n`);
  await engine.close();
}

async function runJob(n: number, env: Record<string, string>, backend?: string): Promise<AmpRankResult[]> {
  const threads = process.env.ZEROFLOW_NUM_THREADS ?? String(Math.max(1, Math.floor(cpus().length / n)));
  const results = await runRankJob<AmpRankResult>({
    script: fileURLToPath(import.meta.url),
    n,
    resultPrefix: PREFIX,
    env: { ZF_AMP_RANK: '1', ZEROFLOW_NUM_THREADS: threads, ...(backend ? { ZEROFLOW_COMM: backend } : {}), ...env },
  });
  if (results.length !== n) throw new Error(`expected ${n} results, got ${results.length}`);
  return results.sort((a, b) => a.rank - b.rank);
}

/** DESIGN.md 6's model-state bytes per rank with Adam (Ψ parameters, N ranks). */
export function ampFormulaBytes(stage: number, psi: number, n: number, precision: Precision): number {
  const [p, g, o] = precision === 'fp32' ? [4, 4, 8] : [2, 2, 12];
  return (
    (stage >= 3 ? (p * psi) / n : p * psi) +
    (stage >= 2 ? (g * psi) / n : g * psi) +
    (stage >= 1 ? (o * psi) / n : o * psi)
  );
}

async function parentMain(): Promise<void> {
  const flag = (name: string) => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const list = (s: string) => s.split(',').filter(Boolean);
  const quick = process.argv.includes('--quick');
  const dryRun = process.argv.includes('--dry-run');
  const stages = list(flag('--stages') ?? (quick ? '0,2,3' : '0,1,2,3')).map(Number);
  const rankCounts = list(flag('--ranks') ?? (quick ? '2' : '1,2')).map(Number);
  const precisions = list(flag('--precisions') ?? (quick ? 'fp32,bf16' : 'fp32,bf16,fp16')) as Precision[];
  const steps = Number(flag('--steps') ?? (quick ? 1 : 4));
  const warmup = Number(flag('--warmup') ?? 1);
  const backend = flag('--backend');
  const command = `node --import tsx amp.ts ${process.argv.slice(2).join(' ')}`.trim();
  const MB = 2 ** 20;
  const mb = (b: number) => (b / MB).toFixed(2);
  const rows: string[] = [];
  const json: Record<string, unknown>[] = [];
  for (const stage of stages) {
    for (const n of rankCounts) {
      const fp32Wire = new Map<number, number>();
      for (const precision of precisions) {
        console.error(`amp: stage ${stage}, ${n} rank(s), ${precision}, ${warmup}+${steps} steps`);
        const env = {
          ZF_AMP_STAGE: String(stage),
          ZF_AMP_PRECISION: precision,
          ZF_AMP_WARMUP: String(warmup),
          ZF_AMP_STEPS: String(steps),
        };
        const rs = await runJob(n, env, backend);
        const m = (r: AmpRankResult) =>
          r.memory.parameters +
          r.memory.gradients +
          (r.memory.masterWeights ?? 0) +
          r.memory.optimizer +
          (r.memory.persistentParameters ?? 0);
        const bytes = Math.max(...rs.map(m));
        const formula = ampFormulaBytes(stage, rs[0].params, n, precision);
        const wire = rs[0].wireBytesPerStep;
        if (precision === 'fp32') fp32Wire.set(n, wire);
        const stepSeconds = rs[0].seconds.map((_, i) => Math.max(...rs.map((r) => r.seconds[i])));
        const tps = stats(stepSeconds.map((s) => (rs[0].tokensPerStep * n) / s)).median;
        const mem = rs[0].memory;
        const vs32 = fp32Wire.get(n) ? (wire / fp32Wire.get(n)!).toFixed(3) : '-';
        const line =
          `| ${stage} | ${n} | ${precision} | ${mb(mem.parameters)} | ${mb(mem.gradients)} | ${mb(mem.masterWeights ?? 0)} ` +
          `| ${mb(mem.optimizer)} | ${mb(bytes)} | ${mb(formula)} | ${(bytes / formula).toFixed(3)} ` +
          `| ${n > 1 ? mb(wire) : '-'} | ${n > 1 ? vs32 : '-'} | ${tps.toFixed(0)} |`;
        console.log(line);
        rows.push(line);
        json.push({
          stage,
          ranks: n,
          precision,
          params: rs[0].params,
          bytesPerRank: bytes,
          formulaBytes: formula,
          wireBytesPerStep: wire,
          tokensPerSec: tps,
        });
      }
    }
  }
  const body = `## Mixed precision: model states and wire bytes per rank (GPT tiny, AdamW)

Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}.
Command: \`${command}\` (in benchmarks/).

| stage | ranks | precision | parameters, MiB | gradients, MiB | fp32 masters, MiB | optimizer, MiB | model states per rank, MiB (max) | formula, MiB | measured / formula | wire per step, MiB | wire vs fp32 | tokens/s (all ranks) |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}

Model states are \`engine.memoryReport()\`'s parameters + gradients + masterWeights + optimizer (+ stage 3's
persistentParameters) of each rank. The formula is DESIGN.md 6's with Adam, Ψ parameters and N ranks: fp32
16Ψ, 8Ψ + 8Ψ/N, 4Ψ + 12Ψ/N, 16Ψ/N (stages 0, 1, 2, 3); fp16/bf16 16Ψ, 4Ψ + 12Ψ/N, 2Ψ + 14Ψ/N, 16Ψ/N (16-bit
parameters and gradients, fp32 master weights and moments in the optimizer's partition); the ratio differs
from 1 by the padding of param groups (stage 3: of each parameter) to a multiple of N and, at stage 3, by
the small parameters kept whole on every rank (\`stage3_param_persistence_threshold\` ${STAGE3_PERSISTENCE}).
Wire bytes are the comms logger's ring-algorithm bytes sent per rank per step (the gradient-norm all-gather of 2 fp32 values per rank stays fp32). Tokens/s: micro-batch 8 per rank,
${steps} measured step(s) after ${warmup} warm-up step(s); all ranks share this machine's cores, and the
16-bit conversions are JS loops (no native kernels yet), so amp's tokens/s show its overhead here, not a
speed-up.`;
  if (dryRun) console.log(`\n${body}`);
  else {
    writeJson('amp', json, { machine: machineLine(), command, date: new Date().toISOString().slice(0, 10) });
    writeSection('amp', body);
  }
}

try {
  if (process.env.ZF_AMP_RANK) await rankMain();
  else await parentMain();
  process.exit(0);
} catch (err) {
  const e = err as Error;
  process.stderr.write(`${process.env.ZF_AMP_RANK ? `[rank ${process.env.RANK}] ` : ''}${e.stack ?? e.message}\n`);
  process.exit(1);
}
