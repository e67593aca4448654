// Correctness of every collective, dtype and op against an independent fp32 reference, bit for bit, on
// 1-4 real processes (sizes not divisible by the rank count, several slot rounds, sub-groups, send/recv).
import { type AddressInfo, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { spawnRanks } from './helpers.js';

describe('shm collectives across real processes', () => {
  for (const n of [1, 2, 3, 4]) {
    it(`${n} rank(s): allReduce/reduceScatter/allGather/broadcast/barrier/send/recv${n >= 3 ? '/sub-groups' : ''}`, async () => {
      const results = await spawnRanks(n, 'correctness');
      for (const r of results) {
        expect(r.stderr, `rank ${r.rank} stderr`).toBe('');
        expect(r.code, `rank ${r.rank} exit code`).toBe(0);
        const last = r.lines.at(-1)!;
        expect(last.failures).toEqual([]);
        expect(last.ok).toBe(true);
        expect(last.checks as number).toBeGreaterThan(200);
      }
    });
  }

  it('unlinks the segment as soon as every rank has mapped it', async () => {
    const results = await spawnRanks(2, 'segment');
    for (const r of results) {
      expect(r.code).toBe(0);
      expect(r.lines[0].leftovers).toEqual([]);
    }
  });
});

describe('shm through core', () => {
  it("initDistributed({ backend: 'shm' }) with core's TCP store forms a working world group", async () => {
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const results = await spawnRanks(2, 'core-init', { MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) });
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.lines[0]).toMatchObject({ backend: 'shm', size: 2, result: [2, 7] });
    }
  });
});
