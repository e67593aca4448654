/**
 * The PyTorch peer of the suite: runs ../shared/peers/gpt_peer.py (the same GPT-2-style `tiny` model, micro-
 * batch 8 per rank, AdamW, fp32) in `single` and `ddp` modes and records tokens/s, step time, peak RSS and
 * model-state bytes to `results/peer.json` (read by plots.ts) and the `peer` section of RESULTS.md.
 *
 * PyTorch comes from Debian (`python3-torch`, PyTorch 1.13, run with /usr/bin/python3). It is large (about
 * 1 GB installed with its dependencies), so it is installed only when asked: `--install-peer`, as root.
 * Without it the benchmark prints one line saying the peer is skipped and why, and exits 0.
 *
 * Usage: node --import tsx peer.ts [--install-peer] [--world-sizes 1,2] [--steps 20] [--preset tiny]
 *                                  [--python /usr/bin/python3] [--peer-dir ../../shared/peers] [--dry-run]
 *   --dry-run: print the rows, write neither results/peer.json nor RESULTS.md (to check the script).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type PeerRow, writeJson } from './plots-data.js';
import { machineLine, writeSection } from './results-file.js';

export const DEFAULT_PEER_DIR = join(import.meta.dirname, '..', '..', 'shared', 'peers');

/** Whether `python` can import torch; the reason when it cannot. */
export function detectTorch(python: string): { ok: true; version: string } | { ok: false; reason: string } {
  const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error)
    return {
      ok: false,
      reason: `${python} cannot run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`,
    };
  if (r.status !== 0) {
    const last = r.stderr.trim().split('\n').pop() ?? '';
    return { ok: false, reason: `${python} cannot import torch (${last}); install it with --install-peer as root` };
  }
  return { ok: true, version: r.stdout.trim() };
}

/** The arguments of one peer run; the peer excludes up to 3 warm-up steps from timing and needs one more. */
export function peerArgs(
  script: string,
  o: { mode: 'single' | 'ddp' | 'zero1'; worldSize: number; preset: string; steps: number },
): string[] {
  if (!(Number.isInteger(o.steps) && o.steps >= 2))
    throw new RangeError(`--steps must be an integer >= 2, got ${o.steps}`);
  const warmup = Math.min(3, o.steps - 1);
  return [
    script,
    '--mode',
    o.mode,
    '--world-size',
    String(o.worldSize),
    '--preset',
    o.preset,
    '--steps',
    String(o.steps),
    '--warmup-steps',
    String(warmup),
  ];
}

/** The peer's record from its output: the last line that parses as a JSON object with `"bench": "gpt_peer"`. */
export function parsePeerOutput(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n').reverse();
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (rec.bench === 'gpt_peer') return rec;
    } catch {
      // a log line that happens to start with "{": keep looking
    }
  }
  throw new Error(`gpt_peer printed no JSON record; its output ended with:\n${stdout.slice(-1000)}`);
}

/** The row plots.ts reads, from a successful peer record. */
export function toPeerRow(rec: Record<string, unknown>): PeerRow {
  if (rec.status !== 'ok') throw new Error(`gpt_peer ${rec.mode} failed: ${String(rec.error ?? rec.status)}`);
  return {
    preset: String(rec.size),
    mode: String(rec.mode),
    worldSize: Number(rec.world_size),
    tokensPerSec: Number(rec.tokens_per_s),
    stepTimeMsMedian: Number(rec.step_time_ms_median),
    peakRssMb: Number(rec.peak_rss_mb_max),
    modelStateBytes: Number(rec.model_state_bytes_max),
    modelStateBytesFormula: Number(rec.model_state_bytes_zero_formula),
  };
}

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  const python = flag('--python') ?? '/usr/bin/python3';
  const peerDir = resolve(flag('--peer-dir') ?? DEFAULT_PEER_DIR);
  const script = join(peerDir, 'gpt_peer.py');
  const worldSizes = (flag('--world-sizes') ?? '1,2').split(',').map(Number);
  const steps = Number(flag('--steps') ?? 20);
  const preset = flag('--preset') ?? 'tiny';
  if (!existsSync(script)) {
    console.log(`peer: skipped, ${script} not found (pass --peer-dir)`);
    return 0;
  }
  let torch = detectTorch(python);
  if (!torch.ok && process.argv.includes('--install-peer')) {
    if (process.getuid?.() !== 0) {
      console.log(`peer: skipped, ${torch.reason}; --install-peer needs root (apt-get install -y python3-torch)`);
      return 0;
    }
    console.error('peer: installing python3-torch with apt-get (large: about 1 GB with its dependencies)');
    const apt = spawnSync('apt-get', ['install', '-y', 'python3-torch'], { stdio: 'inherit' });
    if (apt.status !== 0) throw new Error(`apt-get install -y python3-torch exited with ${apt.status}`);
    torch = detectTorch(python);
  }
  if (!torch.ok) {
    console.log(`peer: skipped, ${torch.reason}`);
    return 0;
  }
  const rows: PeerRow[] = [];
  const commands: string[] = [];
  for (const worldSize of worldSizes) {
    const mode = worldSize === 1 ? 'single' : 'ddp';
    const args = peerArgs(script, { mode, worldSize, preset, steps });
    commands.push(`${python} ${args.join(' ')}`);
    console.error(`peer: ${mode}, ${worldSize} rank(s), torch ${torch.version}`);
    const r = spawnSync(python, args, { encoding: 'utf8', cwd: peerDir, maxBuffer: 64 << 20 });
    if (r.status !== 0 && !r.stdout.includes('"bench"'))
      throw new Error(`gpt_peer exited with ${r.status}:\n${r.stderr.slice(-2000)}`);
    const row = toPeerRow(parsePeerOutput(r.stdout));
    console.log(
      `| ${row.preset} | ${row.mode} | ${row.worldSize} | ${row.tokensPerSec.toFixed(0)} | ${row.stepTimeMsMedian} | ${row.peakRssMb} |`,
    );
    rows.push(row);
  }
  if (process.argv.includes('--dry-run')) return 0;
  const command = `node --import tsx peer.ts ${process.argv.slice(2).join(' ')}`.trim();
  writeJson('peer', rows, { machine: machineLine(), command });
  writeSection(
    'peer',
    `## PyTorch peer (torch ${torch.version}, fp32)

Machine: ${machineLine()}. Date: ${new Date().toISOString().slice(0, 10)}.
Command: \`${command}\` (in benchmarks/), which runs ${commands.map((c) => `\`${c}\``).join(', ')}.

| preset | mode | ranks | tokens/s (all ranks) | step time, ms, median | peak RSS per rank, MB |
|---|---|---|---|---|---|
${rows.map((r) => `| ${r.preset} | ${r.mode} | ${r.worldSize} | ${r.tokensPerSec.toFixed(0)} | ${r.stepTimeMsMedian} | ${r.peakRssMb} |`).join('\n')}

The same model as the \`peer-tiny\` preset of the train-gpt section; run back to back with it and compare ratios
(the host is shared: see ../shared/peers/README.md for the spread).`,
  );
  return 0;
}

if (process.argv[1]?.endsWith('/peer.ts')) process.exitCode = await main();
