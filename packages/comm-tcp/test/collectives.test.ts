import { describe, expect, it } from 'vitest';
import { launch, type RankOutcome } from './harness.js';

function failures(outs: RankOutcome[]): string {
  return outs
    .filter((o) => o.code !== 0)
    .map((o) => `rank ${o.rank} exited ${o.code ?? o.signal}: ${o.stderr}`)
    .join('\n');
}

describe('tcp backend collectives across real processes', () => {
  for (const n of [1, 2, 4]) {
    it(`all collectives, dtypes and ops are exact at ${n} rank(s), sub-groups and send/recv included`, async () => {
      // small segments, so that big buffers travel as many pipelined frames (and peers run ahead)
      const job = await launch(n, 'collectives', () => ({
        ZEROFLOW_COMM_TIMEOUT_MS: '30000',
        ZEROFLOW_TCP_SEGMENT_BYTES: '65536',
      }));
      const outs = await job.outcomes;
      expect(failures(outs)).toBe('');
      for (const o of outs) expect(o.results[0].checks).toBeGreaterThan(80);
    });
  }

  it('gives bit-identical results on every rank and from run to run (3 ranks)', async () => {
    const hashes: string[] = [];
    for (let run = 0; run < 2; run++) {
      const outs = await (await launch(3, 'determinism')).outcomes;
      expect(failures(outs)).toBe('');
      hashes.push(...outs.map((o) => o.results[0].hash as string));
    }
    expect(new Set(hashes).size).toBe(1);
  });
});
