// Failure behaviour: mismatched collectives fail on every rank, a late rank is named by the timeout, a
// SIGKILLed rank is named by the survivors within the timeout and leaves nothing in /dev/shm.
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { spawnRanks } from './helpers.js';

const byCase = (lines: Record<string, unknown>[]) => Object.fromEntries(lines.map((l) => [l.case, l]));

describe('shm failures', () => {
  it('mismatched count, kind or dtype is a CommMismatchError on every rank; a late rank times out by name', async () => {
    const results = await spawnRanks(2, 'failures');
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      const c = byCase(r.lines);
      for (const k of ['count', 'kind', 'dtype']) {
        expect(c[k].error, `${k} on rank ${r.rank}`).toBe('CommMismatchError');
        expect(c[k].message).toMatch(/rank 0 called .*; rank 1 called /);
      }
      expect(c.count.message).toContain('count 10');
      expect(c.after.error).toBe('CommMismatchError');
      expect(c.after.message).toContain('unusable after an earlier failure');
      expect(c.args.error).toBe('CommError');
    }
    const r0 = byCase(results[0].lines);
    expect(r0.timeout.error).toBe('CommTimeoutError');
    expect(r0.timeout.peerRank).toBe(1);
    expect(r0.timeout.message).toContain('rank 1 did not arrive');
    const r1 = byCase(results[1].lines);
    expect(r1.late.error).toBe('CommTimeoutError');
  });

  it('kill -9 of a rank mid-collective: the others fail naming it, /dev/shm stays clean, a new job runs', async () => {
    const started = Date.now();
    const results = await spawnRanks(3, 'kill', { VICTIM: '1', ZEROFLOW_COMM_TIMEOUT_MS: '10000' });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(results[1].signal).toBe('SIGKILL');
    for (const r of [results[0], results[2]]) {
      expect(r.code).toBe(3);
      const err = r.lines.at(-1)!;
      expect(err.error).toBe('CommTimeoutError');
      expect(err.peerRank).toBe(1);
      expect(err.message).toMatch(/rank 1 \(pid \d+\) died/);
      expect(err.ms as number).toBeLessThan(10_000);
    }
    // Segment names carry rank 0's pid: nothing of this job may remain.
    expect(readdirSync('/dev/shm').filter((f) => f.startsWith(`zf-${results[0].pid}-`))).toEqual([]);
    const again = await spawnRanks(2, 'segment');
    for (const r of again) expect(r.code, r.stderr).toBe(0);
  });
});
