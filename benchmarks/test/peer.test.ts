import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PEER_DIR, detectTorch, parsePeerOutput, peerArgs, toPeerRow } from '../peer.js';

const record = {
  bench: 'gpt_peer',
  size: 'tiny',
  mode: 'ddp',
  world_size: 2,
  status: 'ok',
  tokens_per_s: 5123.4,
  step_time_ms_median: 399.1,
  peak_rss_mb_max: 612.5,
  model_state_bytes_max: 67854544,
  model_state_bytes_zero_formula: 67854336,
};

describe('the PyTorch peer', () => {
  it('parses the JSON record out of the peer output and maps it to a plot row', () => {
    const out = `rank 0: warming up\n{"not": "ours"}\n${JSON.stringify(record)}\n`;
    const row = toPeerRow(parsePeerOutput(out));
    expect(row).toEqual({
      preset: 'tiny',
      mode: 'ddp',
      worldSize: 2,
      tokensPerSec: 5123.4,
      stepTimeMsMedian: 399.1,
      peakRssMb: 612.5,
      modelStateBytes: 67854544,
      modelStateBytesFormula: 67854336,
    });
    expect(() => parsePeerOutput('no json here')).toThrow(/no JSON record/);
    expect(() => toPeerRow({ ...record, status: 'error', error: 'FSDP needs CUDA' })).toThrow(/FSDP needs CUDA/);
    expect(peerArgs('p.py', { mode: 'single', worldSize: 1, preset: 'tiny', steps: 5 })).toEqual([
      'p.py',
      '--mode',
      'single',
      '--world-size',
      '1',
      '--preset',
      'tiny',
      '--steps',
      '5',
      '--warmup-steps',
      '3',
    ]);
    expect(peerArgs('p.py', { mode: 'ddp', worldSize: 2, preset: 'tiny', steps: 2 }).slice(-2)).toEqual([
      '--warmup-steps',
      '1',
    ]);
    expect(() => peerArgs('p.py', { mode: 'single', worldSize: 1, preset: 'tiny', steps: 1 })).toThrow(/>= 2/);
  });

  it('reports a python that cannot import torch, and skips with one line', () => {
    const missing = detectTorch('/nonexistent/python3');
    expect(missing.ok).toBe(false);
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'peer.ts', '--python', '/nonexistent/python3'], {
      cwd: join(__dirname, '..'),
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(r.stdout).toMatch(/^peer: skipped, .*(cannot run|not found)/);
    expect(DEFAULT_PEER_DIR).toMatch(/shared[/\\]peers$/);
  });
});
