import { describe, expect, it } from 'vitest';
import {
  type BackendInit,
  type CommBackend,
  chooseCommBackend,
  getCommBackend,
  initDistributed,
  listCommBackends,
  type ProcessGroup,
  registerCommBackend,
  resolveDistributedEnv,
} from '../src/comm/index.js';

describe('resolveDistributedEnv', () => {
  it('reads the PyTorch contract first', () => {
    const d = resolveDistributedEnv(
      {},
      {
        RANK: '3',
        WORLD_SIZE: '8',
        LOCAL_RANK: '1',
        LOCAL_WORLD_SIZE: '2',
        MASTER_ADDR: '10.0.0.1',
        MASTER_PORT: '1234',
        ZEROFLOW_JOB_TOKEN: 't',
        OMPI_COMM_WORLD_RANK: '5',
      },
    );
    expect(d).toMatchObject({
      rank: 3,
      worldSize: 8,
      localRank: 1,
      localWorldSize: 2,
      masterAddr: '10.0.0.1',
      masterPort: 1234,
      token: 't',
      hostsStore: false,
      timeoutMs: 600_000,
    });
  });

  it('falls back to OpenMPI, then Slurm', () => {
    expect(
      resolveDistributedEnv(
        {},
        {
          OMPI_COMM_WORLD_RANK: '0',
          OMPI_COMM_WORLD_SIZE: '4',
          OMPI_COMM_WORLD_LOCAL_RANK: '0',
          OMPI_COMM_WORLD_LOCAL_SIZE: '2',
        },
      ),
    ).toMatchObject({ rank: 0, worldSize: 4, localWorldSize: 2, hostsStore: true, masterPort: 29500 });
    expect(
      resolveDistributedEnv(
        {},
        { SLURM_PROCID: '5', SLURM_NTASKS: '6', SLURM_LOCALID: '2', SLURM_NTASKS_PER_NODE: '3(x2)' },
      ),
    ).toMatchObject({ rank: 5, worldSize: 6, localRank: 2, localWorldSize: 3 });
  });

  it('lets options win, honours ZEROFLOW_STORE_HOSTED and the timeout env, and checks ranges', () => {
    const env = {
      RANK: '0',
      WORLD_SIZE: '2',
      ZEROFLOW_STORE_HOSTED: '1',
      ZEROFLOW_COMM_TIMEOUT_MS: '5000',
      ZEROFLOW_COMM: 'tcp',
    };
    expect(resolveDistributedEnv({}, env)).toMatchObject({ hostsStore: false, timeoutMs: 5000, backend: 'tcp' });
    expect(resolveDistributedEnv({ timeoutMs: 7, backend: 'shm', rank: 1 }, env)).toMatchObject({
      timeoutMs: 7,
      backend: 'shm',
      rank: 1,
    });
    expect(resolveDistributedEnv({}, {})).toMatchObject({ rank: 0, worldSize: 1, masterPort: 0, hostsStore: true });
    expect(() => resolveDistributedEnv({}, { RANK: '2', WORLD_SIZE: '2' })).toThrow(
      /rank 2 is not below the world size 2/,
    );
    expect(() => resolveDistributedEnv({}, { RANK: 'x' })).toThrow(/RANK="x" must be a non-negative integer/);
  });

  it('chooses shm when it is registered, available and the job is on one host, else tcp', () => {
    const base = resolveDistributedEnv({}, { WORLD_SIZE: '4', LOCAL_WORLD_SIZE: '2' });
    expect(chooseCommBackend(base)).toBe('tcp');
    expect(chooseCommBackend({ ...base, backend: 'gloo' })).toBe('gloo');
  });
});

/** A real one-rank backend: its group only knows itself; it records what initDistributed handed it. */
function soloBackend(seen: BackendInit[]): CommBackend {
  return {
    name: 'solo-test',
    available: () => ({ ok: true }),
    async createWorldGroup(init) {
      seen.push(init);
      await init.store.set('solo/ready', String(init.rank));
      return { rank: 0, size: 1, ranks: [0], backend: 'solo-test', destroy() {} } as unknown as ProcessGroup;
    },
  };
}

describe('initDistributed', () => {
  it('hosts the store on rank 0, hands the backend rank, store, token and timeout, and closes cleanly', async () => {
    const seen: BackendInit[] = [];
    registerCommBackend(soloBackend(seen));
    expect(listCommBackends()).toContain('solo-test');
    expect(getCommBackend('solo-test')?.name).toBe('solo-test');
    const dist = await initDistributed({
      backend: 'solo-test',
      env: { ZEROFLOW_JOB_TOKEN: 'tok', ZEROFLOW_COMM_TIMEOUT_MS: '9000' },
    });
    expect(seen[0]).toMatchObject({ rank: 0, worldSize: 1, token: 'tok', timeoutMs: 9000 });
    expect(Buffer.from(await dist.store.get('solo/ready')).toString()).toBe('0');
    expect(dist.world.size).toBe(1);
    await dist.close();
    await expect(dist.store.get('solo/ready', 100)).rejects.toThrow();
  });

  it('names the package to install when the backend is not registered', async () => {
    await expect(initDistributed({ backend: 'nccl', env: {} })).rejects.toThrow(
      /comm backend "nccl" is not registered.*@zeroflow\/comm-nccl/,
    );
  });
});
