/**
 * The PyTorch peer's ddp and zero1 numbers next to the ZeRO stage they correspond to: ddp is stage 0,
 * ZeroRedundancyOptimizer stage 1. Run in the same benchmark when python3-torch is installed
 * ({@link runPeerRecords}); otherwise the peer's recorded numbers (../shared/peers/results.jsonl, written by
 * its run_all.sh), and the table says which.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PEER_DIR, detectTorch, parsePeerOutput, peerArgs } from './peer.js';
import { stats } from './results-file.js';

export const PEER_RESULTS = join(import.meta.dirname, '..', '..', 'shared', 'peers', 'results.jsonl');

/** The fields of a results.jsonl record this table reads (gpt_peer.py writes many more). */
export interface PeerRecord {
  bench?: string;
  status?: string;
  size?: string;
  mode?: string;
  world_size?: number;
  dtype?: string;
  tokens_per_s?: number;
  peak_rss_mb_max?: number;
  model_state_bytes_max?: number;
  time_utc?: string;
}

const STAGE_OF: Record<string, number> = { ddp: 0, zero1: 1 };

/** Successful fp32 ddp/zero1 records of `presets` at `ranks`; [] when the file is absent. */
export function readPeerRecords(presets: string[], ranks: number[], path = PEER_RESULTS): PeerRecord[] {
  if (!existsSync(path)) return [];
  const out: PeerRecord[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let r: PeerRecord;
    try {
      r = JSON.parse(line) as PeerRecord;
    } catch {
      continue; // a truncated last line of an interrupted run
    }
    if (r.bench !== 'gpt_peer' || r.status !== 'ok' || (r.dtype ?? 'fp32') !== 'fp32') continue;
    if (!(r.mode && r.mode in STAGE_OF) || !presets.includes(r.size ?? '')) continue;
    if (!ranks.includes(r.world_size ?? 0) || typeof r.tokens_per_s !== 'number') continue;
    out.push(r);
  }
  return out;
}

/**
 * Runs the peer (ddp and zero1 for each preset and rank count of `ranksFor`, `stepsFor` optimizer steps) in this benchmark;
 * null when /usr/bin/python3 cannot import torch (the reason is printed).
 */
export function runPeerRecords(
  presets: string[],
  ranksFor: (preset: string) => number[],
  stepsFor: (preset: string) => number,
): PeerRecord[] | null {
  const python = '/usr/bin/python3';
  const torch = detectTorch(python);
  const script = join(DEFAULT_PEER_DIR, 'gpt_peer.py');
  if (!torch.ok || !existsSync(script)) {
    console.error(
      `zero: PyTorch peer not run (${torch.ok ? `${script} not found` : torch.reason}); using its recorded numbers`,
    );
    return null;
  }
  const out: PeerRecord[] = [];
  for (const preset of presets)
    for (const mode of ['ddp', 'zero1'] as const)
      for (const worldSize of ranksFor(preset)) {
        const steps = stepsFor(preset);
        console.error(`zero: PyTorch peer ${preset} ${mode}, ${worldSize} rank(s), ${steps} steps`);
        const r = spawnSync(python, peerArgs(script, { mode, worldSize, preset, steps }), {
          encoding: 'utf8',
          cwd: DEFAULT_PEER_DIR,
          maxBuffer: 64 << 20,
        });
        const rec = parsePeerOutput(r.stdout) as PeerRecord;
        if (rec.status !== 'ok') throw new Error(`gpt_peer ${mode} x${worldSize} failed: ${r.stderr.slice(-1500)}`);
        out.push(rec);
      }
  return out;
}

/**
 * The markdown of the peer table, or null without records. `measured` holds this run's median tokens/s per
 * `preset|stage|ranks`; repeated peer records of one configuration show as median (min-max). `live`: the
 * records of {@link runPeerRecords} (this run); without them, the peer's recorded ones.
 */
export function peerTable(
  measured: Map<string, number>,
  presets: string[],
  ranks: number[],
  live: PeerRecord[] | null = null,
): string | null {
  const records = live ?? readPeerRecords(presets, ranks);
  if (records.length === 0) return null;
  const groups = new Map<string, PeerRecord[]>();
  for (const r of records) {
    const key = `${r.size}|${r.mode}|${r.world_size}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const keys = [...groups.keys()].sort((a, b) => {
    const [pa, ma, na] = a.split('|');
    const [pb, mb, nb] = b.split('|');
    return presets.indexOf(pa) - presets.indexOf(pb) || STAGE_OF[ma] - STAGE_OF[mb] || Number(na) - Number(nb);
  });
  const dates = new Set(records.map((r) => (r.time_utc ?? '').slice(0, 10)).filter(Boolean));
  const rows = keys.map((key) => {
    const rs = groups.get(key)!;
    const [preset, mode, n] = key.split('|');
    const stage = STAGE_OF[mode];
    const tps = stats(rs.map((r) => r.tokens_per_s!));
    const tpsText =
      rs.length > 1 ? `${tps.median.toFixed(0)} (${tps.min.toFixed(0)}-${tps.max.toFixed(0)})` : tps.median.toFixed(0);
    const rss = Math.max(...rs.map((r) => r.peak_rss_mb_max ?? Number.NaN));
    const states = Math.max(...rs.map((r) => r.model_state_bytes_max ?? Number.NaN));
    const ours = measured.get(`${preset}|${stage}|${n}`);
    return (
      `| ${preset} | ${mode} | ${n} | ${tpsText} | ${Number.isNaN(rss) ? '-' : rss.toFixed(1)} ` +
      `| ${Number.isNaN(states) ? '-' : (states / 2 ** 20).toFixed(1)} | ${stage} ` +
      `| ${ours === undefined ? 'not run' : ours.toFixed(0)} | ${ours === undefined ? '-' : (ours / tps.median).toFixed(2)} |`
    );
  });
  const header = live
    ? `### PyTorch peer, run in this benchmark right after ZeroFlow

\`/usr/bin/python3 ../shared/peers/gpt_peer.py --mode ddp|zero1 --world-size N --preset P\` (PyTorch 1.13 from
Debian, gloo, fp32, the same model, micro-batch and AdamW): DistributedDataParallel (\`ddp\`) against ZeRO
stage 0, ZeroRedundancyOptimizer (\`zero1\`) against stage 1, one run each. The host is shared and noisy
(the peer measured a 5-25% run-to-run spread): read ratios within that.`
    : `### PyTorch peer: recorded on ${[...dates].sort().join(', ') || '2026-11-26'} by the peer, not in this run

From \`../shared/peers/results.jsonl\` (PyTorch 1.13, gloo, fp32, the same model and micro-batch; 1 thread
per rank from 2 ranks on): DistributedDataParallel (\`ddp\`) against ZeRO stage 0, ZeroRedundancyOptimizer
(\`zero1\`) against stage 1. The last column divides this run's ZeroFlow tokens/s by the peer's recorded
ones: a different run on a shared, noisy host (the peer measured a 5-25% run-to-run spread), so read it as
a rough guide; install python3-torch (\`peer.ts --install-peer\` as root) for a same-run comparison.`;
  return `${header}

| preset | peer mode | ranks | peer tokens/s (all ranks) | peer peak RSS per rank, MiB (max) | peer model states per rank, MiB (max) | ZeroFlow stage | ZeroFlow tokens/s, this run | ZeroFlow / peer |
|---|---|---|---|---|---|---|---|---|
${rows.join('\n')}`;
}
