import { describe, expect, it } from 'vitest';
import { launch } from './harness.js';

describe('tcp backend failures', () => {
  it('a rank calling a different collective is a CommMismatchError on every rank, naming both calls', async () => {
    const outs = await (await launch(3, 'mismatch', () => ({ ZEROFLOW_COMM_TIMEOUT_MS: '20000' }))).outcomes;
    for (const o of outs) {
      expect(o.code, o.stderr).toBe(3);
      expect(o.stderr).toMatch(
        /CommMismatchError: rank \d called (allGather|allReduce)\(1024 float32.*\) where rank \d called (allGather|allReduce)\(1024 float32.*\) at sequence 1/,
      );
      expect(o.stderr).toContain('allGather(1024 float32)');
    }
  });

  it('kill -9 of one rank during a collective makes every other rank fail fast, naming it', async () => {
    const job = await launch(3, 'loop', () => ({ ZEROFLOW_COMM_TIMEOUT_MS: '10000' }));
    await job.printed(1, 'LOOPING');
    const killedAt = Date.now();
    job.procs[1].kill('SIGKILL');
    const outs = await job.outcomes;
    expect(Date.now() - killedAt).toBeLessThan(10_000);
    expect(outs[1].signal).toBe('SIGKILL');
    for (const o of [outs[0], outs[2]]) {
      expect(o.code).not.toBe(0);
      expect(o.stderr).toMatch(/rank 1 disconnected during allReduce #\d+/);
    }
  });

  it('a rank with the wrong job token is rejected by the store with a clear error', async () => {
    const job = await launch(2, 'collectives', (rank) => ({
      ZEROFLOW_COMM_TIMEOUT_MS: '3000',
      ...(rank === 1 ? { ZEROFLOW_JOB_TOKEN: 'not-the-token' } : {}),
    }));
    const outs = await job.outcomes;
    expect(outs[1].code).not.toBe(0);
    expect(outs[1].stderr).toMatch(/job token rejected by store at 127\.0\.0\.1:\d+/);
    expect(outs[0].code).not.toBe(0); // rank 0 waits for rank 1's address and times out
    expect(outs[0].stderr).toMatch(/timed out/);
  });
});
