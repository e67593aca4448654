/**
 * ZeRO stages side by side: for stages 0-3 at 1, 2 and 4 ranks, real rank processes (zero-rank.ts) train
 * the PyTorch peer's GPT `tiny` (and `small` with --small) data-parallel, AdamW, fp32, micro-batch 8 per
 * rank, and report per rank: model-state bytes (engine.memoryReport(): parameters + gradients + optimizer)
 * next to DESIGN.md 6's formula, the RSS after a full GC and the peak RSS, and tokens/s of the whole job
 * (a step takes as long as its slowest rank). The 1-rank stage-0 run is the baseline of the ratios.
 * Stage 3 runs when @zeroflow/zero-stage3 loads, and is skipped with the reason otherwise.
 * Writes the `zero` section of RESULTS.md, results/memory.json and results/zero-train.json; with
 * ../shared/peers/results.jsonl present, also a table of the PyTorch peer's recorded ddp/zero1 numbers.
 *
 * Usage: node --import tsx zero.ts [--quick] [--small] [--stages 0,1,2,3] [--ranks 1,2,4] [--steps 6]
 *                                  [--warmup 2] [--small-ranks 1,2] [--backend shm|tcp] [--dry-run]
 *   --quick: stages 0-2, 1 and 2 ranks, 2 measured steps after 1 warm-up step.
 *   --small: also the 91 M `small` preset, at --small-ranks (default 1,2: each rank holds up to 16 Psi = 1.4 GiB
 *   and a step takes seconds on 2 cores) with at most 3 measured steps after 1 warm-up step.
 *   --dry-run: print the tables, write neither RESULTS.md nor results/*.json (to check the script).
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { type MemoryRow, type TrainRow, zeroFormulaBytes } from './plots-data.js';
import { machineLine, stats, writeJson, writeSection } from './results-file.js';
import { runRankJob } from './spawn-ranks.js';
import { peerTable, runPeerRecords } from './zero-peer.js';
import { loadZeroPackage, ZERO_PREFIX, type ZeroRankResult } from './zero-shared.js';

const RANK_SCRIPT = join(import.meta.dirname, 'zero-rank.ts');

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function ints(text: string): number[] {
  return text.split(',').map((x) => {
    const v = Number(x);
    if (!(Number.isInteger(v) && v >= 0)) throw new Error(`not a non-negative integer: "${x}"`);
    return v;
  });
}

const quick = process.argv.includes('--quick');
const dryRun = process.argv.includes('--dry-run');
const presets = process.argv.includes('--small') ? ['tiny', 'small'] : ['tiny'];
const askedStages = ints(flag('--stages') ?? (quick ? '0,1,2' : '0,1,2,3'));
const rankCounts = ints(flag('--ranks') ?? (quick ? '1,2' : '1,2,4')).filter((n) => n >= 1);
const smallRankCounts = ints(flag('--small-ranks') ?? '1,2').filter((n) => n >= 1);
const ranksFor = (preset: string) => (preset === 'small' ? smallRankCounts : rankCounts);
const steps = Number(flag('--steps') ?? (quick ? 2 : 6));
const warmup = Number(flag('--warmup') ?? (quick ? 1 : 2));
const stepsFor = (preset: string) =>
  preset === 'small' ? { steps: Math.min(steps, 3), warmup: 1 } : { steps, warmup };
const backend = flag('--backend'); // unset: core picks shm when it can run here, else tcp
const command = `node --import tsx zero.ts ${process.argv.slice(2).join(' ')}`.trim();
const MB = 2 ** 20;
const fmt = (x: number, digits = 2) => x.toFixed(digits);
const mb = (bytes: number) => fmt(bytes / MB, 1);
const spread = (xs: number[], digits = 0) => {
  const s = stats(xs);
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}-${fmt(s.max, digits)})`;
};

/** Runs `n` rank processes of zero-rank.ts (with --expose-gc) and returns their results, rank order. */
async function runJob(n: number, env: Record<string, string>): Promise<ZeroRankResult[]> {
  // Split the cores between ranks as the peer does (1 thread per rank from 2 ranks on 2 cores), so that
  // ranks do not oversubscribe the machine with native thread pools; an explicit setting wins.
  const threads = process.env.ZEROFLOW_NUM_THREADS ?? String(Math.max(1, Math.floor(cpus().length / n)));
  const results = await runRankJob<ZeroRankResult>({
    script: RANK_SCRIPT,
    n,
    resultPrefix: ZERO_PREFIX,
    nodeArgs: ['--expose-gc'],
    env: { ZEROFLOW_NUM_THREADS: threads, ...(backend ? { ZEROFLOW_COMM: backend } : {}), ...env },
  });
  if (results.length !== n) throw new Error(`expected ${n} results, got ${results.length}`);
  return results.sort((a, b) => a.rank - b.rank);
}

/** Which stages can run: 1-3 need their package (stage 3 is optional: skipped with the reason). */
async function availableStages(): Promise<{ stages: number[]; notes: string[] }> {
  const stages: number[] = [];
  const notes: string[] = [];
  for (const s of askedStages) {
    if (s > 3) throw new Error(`ZeRO stage ${s} does not exist (0-3)`);
    if (s === 0) {
      stages.push(s);
      continue;
    }
    try {
      const mod = await loadZeroPackage(s);
      if (!mod.plugin) throw new Error('it exports no `plugin`');
      stages.push(s);
    } catch (e) {
      if (s !== 3) throw e;
      notes.push(`Stage 3 skipped: @zeroflow/zero-stage3 did not load (${(e as Error).message.split('\n')[0]}).`);
    }
  }
  return { stages, notes };
}

const date = new Date().toISOString().slice(0, 10);
const { stages, notes } = await availableStages();
const tableRows: string[] = [];
const memoryRows: MemoryRow[] = [];
const trainRows: TrainRow[] = [];
/** Median tokens/s per `preset|stage|ranks`, for the peer table. */
const measured = new Map<string, number>();
const maxOf = (rs: ZeroRankResult[], f: (r: ZeroRankResult) => number) => Math.max(...rs.map(f));
let comm = '';

for (const preset of presets) {
  let baseline = 0;
  for (const stage of stages) {
    for (const n of ranksFor(preset)) {
      const run = stepsFor(preset);
      console.error(`zero: ${preset}, stage ${stage}, ${n} rank(s), ${run.warmup}+${run.steps} steps`);
      const rs = await runJob(n, {
        ZF_ZERO_STAGE: String(stage),
        ZF_ZERO_PRESET: preset,
        ZF_ZERO_WARMUP: String(run.warmup),
        ZF_ZERO_STEPS: String(run.steps),
      });
      if (n > 1 && !comm) comm = rs[0].plugins.find((p) => p.startsWith('@zeroflow/comm-')) ?? '';
      const params = rs[0].params;
      // a step takes as long as its slowest rank
      const stepSeconds = rs[0].seconds.map((_, i) => Math.max(...rs.map((r) => r.seconds[i])));
      const tps = stepSeconds.map((s) => (rs[0].tokensPerStep * n) / s);
      const median = stats(tps).median;
      if (stage === 0 && n === 1) baseline = median;
      measured.set(`${preset}|${stage}|${n}`, median);
      // padding makes slices uneven by a few elements: the largest rank is what must fit
      const bytes = maxOf(rs, (r) => r.modelStateBytes);
      const formula = zeroFormulaBytes(stage, params, n);
      const extra = Object.entries(rs[0].memory)
        .filter(([k, v]) => !['parameters', 'gradients', 'optimizer'].includes(k) && v > 0)
        .map(([k, v]) => `${k} ${mb(v)}`)
        .join(', ');
      const line =
        `| ${preset} | ${stage} | ${n} | ${mb(bytes)} | ${mb(formula)} | ${fmt(bytes / formula)} | ${extra || '-'} ` +
        `| ${mb(maxOf(rs, (r) => r.peakRssBytes))} | ${mb(maxOf(rs, (r) => r.rssAfterGcBytes))} ` +
        `| ${spread(tps)} | ${baseline ? fmt(median / baseline) : '-'} |`;
      console.log(line);
      tableRows.push(line);
      // only the tiny preset goes to memory.json: the plot labels its bars by stage and N alone
      if (preset === 'tiny') memoryRows.push({ stage, ranks: n, params, bytesPerRank: bytes, precision: 'fp32' });
      trainRows.push({ backend: n === 1 ? 'none' : comm || 'default', ranks: n, stage, preset, tokensPerSec: median });
    }
  }
}

// the peer runs after ZeroFlow, never beside it: both would share the 2 cores
const peer = peerTable(
  measured,
  presets,
  [...new Set([...rankCounts, ...(presets.includes('small') ? smallRankCounts : [])])],
  dryRun ? null : runPeerRecords(presets, ranksFor, (p) => stepsFor(p).steps + stepsFor(p).warmup + 1),
);
const body = `## ZeRO stages: memory per rank and throughput (GPT, fp32, AdamW)

Machine: ${machineLine()}. Date: ${date}.
Command: \`${command}\` (in benchmarks/). Backend between ranks: ${comm || 'none (1 rank only)'}.

| preset | stage | ranks | model states per rank, MiB (max over ranks) | formula, MiB | measured / formula | other owner buffers (rank 0), MiB | peak RSS per rank, MiB (max) | RSS after GC per rank, MiB (max) | tokens/s (all ranks), median (min-max) | vs stage 0, 1 rank |
|---|---|---|---|---|---|---|---|---|---|---|
${tableRows.join('\n')}

Model states are \`engine.memoryReport()\`'s parameters + gradients + optimizer bytes of each rank; the
formula is DESIGN.md 6's for fp32 Adam (Psi parameters, N ranks): stage 0 16 Psi, stage 1 8 Psi + 8 Psi/N,
stage 2 4 Psi + 12 Psi/N, stage 3 16 Psi/N. Gradients as the owner reports them include its reduce
buckets (stage 2 and 3), so a ratio above 1 there is the bucket pool. Other owner buffers (communication
staging, gathered stage-3 parameters, ...) are listed but not counted. Peak RSS is \`resourceUsage().maxRSS\`
of the rank over its whole run; RSS after GC is \`memoryUsage().rss\` after \`global.gc()\` at the end.
Buckets are the peer's: \`reduce_bucket_size\` (and \`allgather_bucket_size\` at stages 1-2) 6.55 M elements,
PyTorch DDP's 25 MiB \`bucket_cap_mb\`, instead of DeepSpeed's 5e8-element default (whose stage 1-3 staging
alone is 0.7 GiB per rank on \`small\`).
Tokens/s: micro-batch 8 per rank, ${steps} measured step(s) after ${warmup} warm-up step(s) (\`small\`: ${stepsFor('small').steps} after 1), a step taking as
long as its slowest rank; each rank has max(1, cores / ranks) native threads. All ranks share this
machine's cores, so more ranks than cores cannot scale: the ratios show what each stage's communication and
the contention cost, not a cluster's speed-up.${notes.length ? `\n\n${notes.join('\n')}` : ''}${peer ? `\n\n${peer}` : ''}`;

if (dryRun) console.log(`\n${body}`);
else {
  const meta = { machine: machineLine(), command, date };
  writeJson('memory', memoryRows, meta);
  writeJson('zero-train', trainRows, meta);
  writeSection('zero', body);
}
