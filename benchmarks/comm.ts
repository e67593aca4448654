/**
 * Collective bandwidth and data-parallel training throughput of ZeroFlow's comm backends, on real rank
 * processes (comm-rank.ts) joined by core's initDistributed, as a training job runs them.
 *  - `comm`: bus bandwidth (nccl-tests' definition) of allReduce, reduceScatter, allGather and broadcast,
 *    fp32, per size, rank count and backend, next to two ceilings measured in the same run: memcpy and a
 *    raw loopback TCP stream between two processes.
 *  - `dp-train`: tokens/s of the example GPT trained data-parallel (stage 0, AdamW, micro-batch 8) per rank
 *    count and backend; the 1-rank run is the baseline of the ratios.
 * Writes the `comm` and `dp-train` sections of RESULTS.md.
 *
 * Usage: node --import tsx comm.ts [--quick] [--sizes 1,16,64] [--ranks 2,4] [--backends shm,tcp]
 *                                  [--steps 8] [--skip-comm] [--skip-train]
 *   --quick: 1 and 16 MB, 2 ranks, training at 1 and 2 ranks. Sizes are MB (2^20 bytes) of the full buffer.
 */
import { join } from 'node:path';
import { loopbackTcpGBs, memcpyGBs } from './comm-ceilings.js';
import { busBandwidth, COLLECTIVES, type RankResult, RESULT_PREFIX } from './comm-shared.js';
import { machineLine, stats, writeJson, writeSection } from './results-file.js';
import { runRankJob } from './spawn-ranks.js';

const RANK_SCRIPT = join(import.meta.dirname, 'comm-rank.ts');

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function numbers(text: string): number[] {
  return text.split(',').map((x) => {
    const v = Number(x);
    if (!(v > 0)) throw new Error(`not a positive number: "${x}"`);
    return v;
  });
}

const quick = process.argv.includes('--quick');
const sizesMB = numbers(flag('--sizes') ?? (quick ? '1,16' : '1,16,64'));
const rankCounts = numbers(flag('--ranks') ?? (quick ? '2' : '2,4')).filter((n) => n >= 2);
const backends = (flag('--backends') ?? 'shm,tcp').split(',');
const trainSteps = Number(flag('--steps') ?? (quick ? 4 : 8));
const trainRanks = [1, ...rankCounts];
const command = `node --import tsx comm.ts ${process.argv.slice(2).join(' ')}`.trim();
const fmt = (x: number, digits = 2) => x.toFixed(digits);
const spread = (xs: number[], digits = 2) => {
  const s = stats(xs);
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}-${fmt(s.max, digits)})`;
};

/** Runs `n` rank processes of comm-rank.ts and returns every result line they printed. */
function runJob(n: number, env: Record<string, string>): Promise<RankResult[]> {
  return runRankJob<RankResult>({ script: RANK_SCRIPT, n, resultPrefix: RESULT_PREFIX, env });
}

/** Per-iteration time of the whole group: the slowest rank's. */
function groupSeconds(perRank: { seconds: number[] }[]): number[] {
  return perRank[0].seconds.map((_, i) => Math.max(...perRank.map((r) => r.seconds[i])));
}

/** Whether a backend can run here, and why not (shm needs its native addon). */
async function availability(backend: string): Promise<{ ok: boolean; reason?: string }> {
  if (backend === 'shm') return (await import('@zeroflow/comm-shm')).shmBackend.available();
  if (backend === 'tcp') return { ok: true };
  return { ok: false, reason: `unknown backend "${backend}"` };
}

const date = new Date().toISOString().slice(0, 10);
const header = `Machine: ${machineLine()}. Date: ${date}.\nCommand: \`${command}\` (in benchmarks/).`;
const unavailable = new Map<string, string>();
for (const b of backends) {
  const a = await availability(b);
  if (!a.ok) unavailable.set(b, a.reason ?? 'unavailable');
}

if (!process.argv.includes('--skip-comm')) {
  console.error('ceilings: memcpy 64 MB, loopback TCP stream');
  const memcpy = memcpyGBs(64 << 20, 10);
  const tcp = await loopbackTcpGBs(quick ? 256 << 20 : 512 << 20, 5);
  const tcpMedian = stats(tcp).median;
  const rows: string[] = [];
  const jsonRows: { backend: string; ranks: number; op: string; bytes: number; busGBs: number; timeMs: number }[] = [];
  for (const backend of backends) {
    if (unavailable.has(backend)) {
      rows.push(`| ${backend} | | | | not available here: ${unavailable.get(backend)} | | |`);
      continue;
    }
    for (const n of rankCounts) {
      console.error(`collectives: ${backend}, ${n} ranks, ${sizesMB.join('/')} MB`);
      const results = await runJob(n, {
        ZF_BENCH_MODE: 'collectives',
        ZF_BENCH_BACKEND: backend,
        ZF_BENCH_SIZES: sizesMB.map((mb) => Math.round(mb * 2 ** 20)).join(','),
      });
      for (const mb of sizesMB) {
        for (const op of COLLECTIVES) {
          const mine = results.filter(
            (r): r is Extract<RankResult, { kind: 'collective' }> =>
              r.kind === 'collective' && r.op === op && Math.abs(r.bytes - mb * 2 ** 20) < 4 * n,
          );
          if (mine.length !== n) throw new Error(`expected ${n} results for ${op} ${mb} MB, got ${mine.length}`);
          const seconds = groupSeconds(mine);
          const bus = seconds.map((s) => busBandwidth(op, mine[0].bytes, n, s) / 1e9);
          const line = `| ${backend} | ${n} | ${op} | ${mb} MB | ${spread(bus)} | ${fmt(stats(seconds).median * 1000, 1)} | ${fmt(stats(bus).median / tcpMedian)} |`;
          console.log(line);
          rows.push(line);
          jsonRows.push({
            backend,
            ranks: n,
            op,
            bytes: mine[0].bytes,
            busGBs: stats(bus).median,
            timeMs: stats(seconds).median * 1000,
          });
        }
      }
    }
  }
  writeJson('comm', jsonRows, { machine: machineLine(), command });
  writeSection(
    'comm',
    `## Collective bus bandwidth (fp32)

${header}

Ceilings measured in this run: memcpy (\`Float32Array.prototype.set\`, 64 MB, one process) ${spread(memcpy)} GB/s;
raw loopback TCP stream between two processes (16 MB writes, reads into a reused buffer) ${spread(tcp)} GB/s.

| backend | ranks | collective | size | bus bandwidth, GB/s, median (min-max) | time, ms, median | bus bandwidth / loopback TCP |
|---|---|---|---|---|---|---|
${rows.join('\n')}

Bus bandwidth as nccl-tests defines it, from S = bytes of the full buffer and the time t of one collective
(the slowest rank's, all ranks released together by a barrier): allReduce 2(n-1)/n x S/t, reduceScatter and
allGather (n-1)/n x S/t, broadcast S/t. It is comparable across rank counts and with a link's raw bandwidth.
Buffers of the tcp backend are SharedArrayBuffer-backed (its fast path); each size runs 2 warm-up iterations,
then 20 (up to 4 MB), 10 (up to 16 MB) or 6 measured ones. All ranks share this machine's cores.`,
  );
}

if (!process.argv.includes('--skip-train')) {
  const rows: string[] = [];
  const jsonRows: { backend: string; ranks: number; stage: number; preset: string; tokensPerSec: number }[] = [];
  let baseline = 0;
  for (const n of trainRanks) {
    // one rank has no communication: its run is the baseline of every backend's ratios
    for (const backend of n === 1 ? ['none'] : backends) {
      if (unavailable.has(backend)) continue;
      console.error(`training: ${n} rank(s), backend ${backend}`);
      const results = await runJob(n, {
        ZF_BENCH_MODE: 'train',
        ZF_BENCH_BACKEND: backend,
        ZF_BENCH_STEPS: String(trainSteps),
      });
      const mine = results.filter((r): r is Extract<RankResult, { kind: 'train' }> => r.kind === 'train');
      if (mine.length !== n) throw new Error(`expected ${n} training results, got ${mine.length}`);
      const tokens = mine[0].tokensPerStep * n;
      const tps = groupSeconds(mine).map((s) => tokens / s);
      const median = stats(tps).median;
      if (n === 1) baseline = median;
      const ratio = median / baseline;
      const line = `| ${n === 1 ? '- (1 rank)' : backend} | ${n} | ${spread(tps, 0)} | ${fmt(ratio)} | ${fmt(ratio / n)} |`;
      console.log(line);
      rows.push(line);
      // preset `example`: the main example's GPT (no PyTorch peer runs it; a `tiny` row would be compared)
      jsonRows.push({ backend, ranks: n, stage: 0, preset: 'example', tokensPerSec: median });
    }
  }
  writeJson('dp-train', jsonRows, { machine: machineLine(), command });
  writeSection(
    'dp-train',
    `## Data-parallel training throughput (GPT example model, stage 0)

${header}

| backend | ranks | tokens/s (all ranks), median (min-max) | vs 1 rank | scaling efficiency (ratio / ranks) |
|---|---|---|---|---|
${rows.join('\n')}

The main example's GPT (vocab 1024, block 64, 2 layers, 4 heads, 64 wide), micro-batch 8 per rank, AdamW,
fp32, ZeRO stage 0 (gradients all-reduced in buckets during backward). Each rank trains on its own samples;
${trainSteps} measured steps after 2 warm-up steps, a step's time being its slowest rank's. The 1-rank run
(no communication) is the baseline measured in this run. Every rank shares this machine's cores, so more
ranks than cores cannot scale; the ratios show what communication and contention cost.`,
  );
}
