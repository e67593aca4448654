/**
 * Draws the benchmark suite's charts from the machine-readable results (`results/<name>.json`, see
 * plots-data.ts) into `plots/*.svg`:
 *  - comm-<op>.svg      collective bus bandwidth vs buffer size, one line per backend and rank count;
 *  - train-scaling.svg  tokens/s vs ranks, one line per ZeRO stage (and backend);
 *  - memory.svg         model-state bytes per rank per stage and rank count, measured against the formula;
 *  - vs-pytorch.svg     ZeroFlow vs the PyTorch peer, tokens/s, where both ran the same model.
 * A chart whose data is missing is skipped with one line saying which file to produce.
 *
 * Usage: node --import tsx plots.ts [--results DIR] [--out DIR]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  type CommRow,
  type MemoryRow,
  type PeerRow,
  RESULTS_JSON_DIR,
  readJson,
  type SingleTrainRow,
  type TrainRow,
  zeroFormulaBytes,
} from './plots-data.js';
import { barChart, formatBytes, type LineSeries, lineChart } from './plots-svg.js';

export const PLOTS_DIR = join(import.meta.dirname, 'plots');

/** What a run of the plot script did. */
export interface PlotReport {
  written: string[];
  skipped: { plot: string; reason: string }[];
}

const groupBy = <T>(rows: T[], key: (r: T) => string): Map<string, T[]> => {
  const m = new Map<string, T[]>();
  for (const r of rows) m.set(key(r), [...(m.get(key(r)) ?? []), r]);
  return m;
};

/** One SVG per collective: bus bandwidth (GB/s) vs size, a line per backend x rank count. */
function commPlots(rows: CommRow[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [op, mine] of groupBy(rows, (r) => r.op)) {
    const series: LineSeries[] = [...groupBy(mine, (r) => `${r.backend}, ${r.ranks} ranks`)].map(([name, rs]) => ({
      name,
      points: rs.map((r) => [r.bytes, r.busGBs] as [number, number]),
    }));
    out.set(
      `comm-${op}.svg`,
      lineChart({
        title: `${op}: bus bandwidth vs size`,
        x: { label: 'buffer size', scale: 'log2', format: formatBytes },
        y: { label: 'bus bandwidth, GB/s', includeZero: true },
        series,
      }),
    );
  }
  return out;
}

function trainScaling(rows: TrainRow[]): string {
  // dp-train's rows are the example model, zero-train's the peer presets: one line per model and stage
  const series: LineSeries[] = [...groupBy(rows, (r) => `${r.preset ?? 'example'}, stage ${r.stage ?? 0}`)].flatMap(
    ([stage, rs]) => {
      // the 1-rank run has no backend: it starts every backend's line of that stage
      const single = rs.filter((r) => r.ranks === 1);
      const multi = groupBy(
        rs.filter((r) => r.ranks > 1),
        (r) => r.backend,
      );
      if (multi.size === 0) return [{ name: stage, points: single.map((r) => [r.ranks, r.tokensPerSec]) }];
      return [...multi].map(([backend, m]) => ({
        name: `${stage}, ${backend}`,
        points: [...single, ...m].map((r) => [r.ranks, r.tokensPerSec] as [number, number]),
      }));
    },
  );
  return lineChart({
    title: 'Training throughput vs ranks',
    x: { label: 'data-parallel ranks', format: (v) => String(v) },
    y: { label: 'tokens/s (all ranks)', includeZero: true },
    series,
  });
}

function memoryPlot(rows: MemoryRow[]): string {
  const sorted = [...rows].sort((a, b) => a.stage - b.stage || a.ranks - b.ranks);
  return barChart({
    title: 'Model-state memory per rank: measured vs ZeRO formula',
    categories: sorted.map((r) => `stage ${r.stage}, N=${r.ranks}`),
    series: [
      { name: 'measured', values: sorted.map((r) => r.bytesPerRank) },
      {
        name: 'formula',
        values: sorted.map((r) => r.formulaBytes ?? zeroFormulaBytes(r.stage, r.params, r.ranks, r.precision)),
      },
    ],
    y: { label: 'bytes per rank', format: formatBytes, bytes: true },
  });
}

/** ZeroFlow and PyTorch side by side where both ran the same model preset at the same rank count. */
function versusPeer(zeroflow: Map<string, number>, peer: PeerRow[]): string | null {
  const peerBest = new Map<string, number>();
  // data-parallel modes only (single, ddp): the ZeroFlow rows are stage 0
  for (const r of peer.filter((p) => p.mode === 'single' || p.mode === 'ddp')) {
    const key = `${r.preset}|${r.worldSize}`;
    peerBest.set(key, Math.max(peerBest.get(key) ?? 0, r.tokensPerSec));
  }
  const keys = [...new Set([...zeroflow.keys(), ...peerBest.keys()])].filter((k) => zeroflow.has(k) && peerBest.has(k));
  if (keys.length === 0) return null;
  keys.sort();
  return barChart({
    title: 'ZeroFlow vs PyTorch (same model, fp32)',
    categories: keys.map((k) => {
      const [preset, n] = k.split('|');
      return `${preset}, ${n} rank${n === '1' ? '' : 's'}`;
    }),
    series: [
      { name: 'ZeroFlow', values: keys.map((k) => zeroflow.get(k)!) },
      { name: 'PyTorch', values: keys.map((k) => peerBest.get(k)!) },
    ],
    y: { label: 'tokens/s (all ranks)' },
  });
}

/** Reads every results file in `resultsDir` and writes the charts it can into `plotsDir`. */
export function renderPlots(resultsDir = RESULTS_JSON_DIR, plotsDir = PLOTS_DIR): PlotReport {
  const report: PlotReport = { written: [], skipped: [] };
  const charts = new Map<string, string>();
  const skip = (plot: string, reason: string) => report.skipped.push({ plot, reason });

  const comm = readJson<CommRow>('comm', resultsDir);
  if (comm?.rows.length) for (const [f, svg] of commPlots(comm.rows)) charts.set(f, svg);
  else skip('comm-<op>.svg', 'no results/comm.json rows (run comm.ts)');

  const train = readJson<TrainRow>('dp-train', resultsDir);
  const trainRows = [...(train?.rows ?? []), ...(readJson<TrainRow>('zero-train', resultsDir)?.rows ?? [])];
  if (trainRows.length) charts.set('train-scaling.svg', trainScaling(trainRows));
  else skip('train-scaling.svg', 'no results/dp-train.json rows (run comm.ts)');

  const memory = readJson<MemoryRow>('memory', resultsDir);
  if (memory?.rows.length) charts.set('memory.svg', memoryPlot(memory.rows));
  else skip('memory.svg', 'no results/memory.json rows (a ZeRO memory benchmark writes them)');

  const peer = readJson<PeerRow>('peer', resultsDir);
  const single = readJson<SingleTrainRow>('train-gpt', resultsDir);
  if (!peer?.rows.length) skip('vs-pytorch.svg', 'no results/peer.json rows (run peer.ts; it needs python3-torch)');
  else {
    const zf = new Map<string, number>();
    // train-gpt's `peer-tiny` preset is the peer's `tiny` model
    for (const r of single?.rows ?? []) zf.set(`${r.preset.replace(/^peer-/, '')}|1`, r.tokensPerSecEngine);
    for (const r of trainRows) if (r.preset && (r.stage ?? 0) === 0) zf.set(`${r.preset}|${r.ranks}`, r.tokensPerSec);
    const svg = versusPeer(zf, peer.rows);
    if (svg) charts.set('vs-pytorch.svg', svg);
    else skip('vs-pytorch.svg', 'no ZeroFlow row (train-gpt.json, dp-train.json) ran a model preset the peer ran');
  }

  if (charts.size > 0) mkdirSync(plotsDir, { recursive: true });
  for (const [file, svg] of charts) {
    const path = join(plotsDir, file);
    writeFileSync(path, svg);
    report.written.push(path);
  }
  return report;
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (import.meta.filename === process.argv[1] || process.argv[1]?.endsWith('/plots.ts')) {
  const resultsDir = resolve(flag('--results') ?? RESULTS_JSON_DIR);
  const r = renderPlots(resultsDir, resolve(flag('--out') ?? PLOTS_DIR));
  for (const p of r.written) console.log(`wrote ${p}`);
  for (const s of r.skipped) console.log(`skipped ${s.plot}: ${s.reason}`);
  if (r.written.length === 0) console.log(`no plots written: no usable results in ${resultsDir}`);
}
