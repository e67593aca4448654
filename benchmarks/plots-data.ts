/**
 * The machine-readable side of the benchmark suite: each benchmark writes its rows as JSON to
 * `results/<name>.json` (next to its markdown section of RESULTS.md), and `plots.ts` reads them. This file
 * defines the row shapes the plots understand, the writer, and the reader.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RESULTS_JSON_DIR = join(import.meta.dirname, 'results');

/** What every results file holds: its rows plus where and how they were measured. */
export interface ResultsFile<Row> {
  name: string;
  machine: string;
  date: string;
  command: string;
  rows: Row[];
}

/** `comm.json`: one collective at one size, backend and rank count. */
export interface CommRow {
  backend: string;
  ranks: number;
  op: string;
  /** Bytes of the full buffer. */
  bytes: number;
  /** Bus bandwidth (nccl-tests' definition), GB/s, median. */
  busGBs: number;
  timeMs?: number;
}

/** `dp-train.json` (and any later ZeRO training benchmark): throughput at a stage and rank count. */
export interface TrainRow {
  backend: string;
  ranks: number;
  /** ZeRO stage; absent means 0 (today's dp-train benchmark is stage 0). */
  stage?: number;
  tokensPerSec: number;
  /** Model preset, when the row can be compared with the PyTorch peer's (e.g. `tiny`). */
  preset?: string;
}

/** `memory.json`: bytes of model states held per rank, measured, for a model of `params` parameters. */
export interface MemoryRow {
  stage: number;
  ranks: number;
  params: number;
  bytesPerRank: number;
  /** `fp32` (default) or `mixed` (fp16/bf16 with fp32 master weights). */
  precision?: 'fp32' | 'mixed';
  /** The formula's bytes; computed by {@link zeroFormulaBytes} when absent. */
  formulaBytes?: number;
}

/** `train-gpt.json`: single-process throughput per preset. */
export interface SingleTrainRow {
  preset: string;
  params: number;
  tokensPerSecBaseline: number;
  tokensPerSecEngine: number;
}

/** `peer.json`: the PyTorch peer (../shared/peers/gpt_peer.py) per mode and world size. */
export interface PeerRow {
  preset: string;
  mode: string;
  worldSize: number;
  tokensPerSec: number;
  stepTimeMsMedian?: number;
  peakRssMb?: number;
  modelStateBytes?: number;
  modelStateBytesFormula?: number;
}

/**
 * Model-state bytes per rank with Adam (DESIGN.md section 6; Psi = params, N = ranks). fp32: 4 param +
 * 4 grad + 8 Adam = 16 Psi, stage 1 shards Adam (8 Psi + 8 Psi/N), stage 2 also gradients (4 Psi + 12 Psi/N),
 * stage 3 everything (16 Psi/N). Mixed precision: 2 + 2 + 12 (fp32 master + Adam) = 16 Psi, stage 1
 * 4 Psi + 12 Psi/N, stage 2 2 Psi + 14 Psi/N, stage 3 16 Psi/N.
 */
export function zeroFormulaBytes(
  stage: number,
  params: number,
  ranks: number,
  precision: 'fp32' | 'mixed' = 'fp32',
): number {
  const P = params;
  const N = ranks;
  const [param, grad] = precision === 'fp32' ? [4, 4] : [2, 2];
  const rest = 16 - param - grad; // optimizer states (and fp32 master weights under mixed precision)
  switch (stage) {
    case 0:
      return 16 * P;
    case 1:
      return (param + grad) * P + (rest * P) / N;
    case 2:
      return param * P + ((grad + rest) * P) / N;
    case 3:
      return (16 * P) / N;
    default:
      throw new RangeError(`ZeRO stage ${stage} does not exist (0-3)`);
  }
}

/** Writes `rows` to `<dir>/<name>.json` with the measuring context (the benchmarks' JSON twin of writeSection). */
export function writeJson<Row>(
  name: string,
  rows: Row[],
  meta: { machine: string; command: string; date?: string },
  dir = RESULTS_JSON_DIR,
): string {
  mkdirSync(dir, { recursive: true });
  const file: ResultsFile<Row> = {
    name,
    machine: meta.machine,
    date: meta.date ?? new Date().toISOString().slice(0, 10),
    command: meta.command,
    rows,
  };
  const path = join(dir, `${name}.json`);
  writeFileSync(path, `${JSON.stringify(file, null, 1)}\n`);
  return path;
}

/** Reads `<dir>/<name>.json`; null when it does not exist. A malformed file is an error naming it. */
export function readJson<Row>(name: string, dir = RESULTS_JSON_DIR): ResultsFile<Row> | null {
  const path = join(dir, `${name}.json`);
  if (!existsSync(path)) return null;
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<ResultsFile<Row>>;
  if (!Array.isArray(parsed.rows)) throw new Error(`${path}: expected an object with a "rows" array`);
  return {
    name,
    machine: parsed.machine ?? '',
    date: parsed.date ?? '',
    command: parsed.command ?? '',
    rows: parsed.rows,
  };
}
