import { getCommBackend, listCommBackends } from './registry.js';
import { TCPStore } from './store-client.js';
import { TCPStoreServer } from './store-server.js';
import { CommError, type ProcessGroup, type Store } from './types.js';

/** Options of {@link initDistributed}; each falls back to the environment, then to a default. */
export interface InitDistributedOptions {
  /** `shm`, `tcp`, ... (default: env ZEROFLOW_COMM, else `shm` where it can run, else `tcp`). */
  backend?: string;
  rank?: number;
  worldSize?: number;
  localRank?: number;
  localWorldSize?: number;
  /** Host of the rendezvous store (env MASTER_ADDR, default 127.0.0.1). */
  masterAddr?: string;
  /** Port of the rendezvous store (env MASTER_PORT, default 29500). */
  masterPort?: number;
  /** Job token (env ZEROFLOW_JOB_TOKEN, default empty). */
  token?: string;
  /** Default timeout of the store and of every collective, ms (env ZEROFLOW_COMM_TIMEOUT_MS, default 600000). */
  timeoutMs?: number;
  /** The environment to read (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

/** Where this process stands in the job, resolved from options and the environment. */
export interface DistributedEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  masterAddr: string;
  masterPort: number;
  token: string;
  timeoutMs: number;
  /** True when this process must host the store (rank 0, unless the launcher hosts it: ZEROFLOW_STORE_HOSTED). */
  hostsStore: boolean;
  /** The backend asked for by option or env, if any. */
  backend?: string;
}

/** The result of {@link initDistributed}. */
export interface DistributedContext {
  /** All ranks of the job. */
  world: ProcessGroup;
  /** The rendezvous store (shared key-value space of the job). */
  store: Store;
  /** Destroys the world group, leaves the store and, on the hosting rank, stops it once every rank has left. */
  close(): Promise<void>;
}

const DEFAULT_TIMEOUT_MS = 600_000;
const DEFAULT_MASTER_PORT = 29500;

function intFrom(env: NodeJS.ProcessEnv, names: string[]): number | undefined {
  for (const n of names) {
    const v = env[n];
    if (v === undefined || v === '') continue;
    const x = Number(v);
    if (!Number.isInteger(x) || x < 0)
      throw new CommError(`environment variable ${n}="${v}" must be a non-negative integer`);
    return x;
  }
  return undefined;
}

/**
 * Resolves rank, sizes, store address, token and timeout from `opts`, then PyTorch's env contract (RANK,
 * WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), then OpenMPI (OMPI_COMM_WORLD_*), then
 * Slurm (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE), else a single process.
 */
export function resolveDistributedEnv(
  opts: InitDistributedOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): DistributedEnv {
  const rank = opts.rank ?? intFrom(env, ['RANK', 'OMPI_COMM_WORLD_RANK', 'SLURM_PROCID']) ?? 0;
  const worldSize = opts.worldSize ?? intFrom(env, ['WORLD_SIZE', 'OMPI_COMM_WORLD_SIZE', 'SLURM_NTASKS']) ?? 1;
  const localRank =
    opts.localRank ?? intFrom(env, ['LOCAL_RANK', 'OMPI_COMM_WORLD_LOCAL_RANK', 'SLURM_LOCALID']) ?? rank;
  // Slurm may write SLURM_NTASKS_PER_NODE as "2(x3)"; its leading number is the count on this node
  const slurmPerNode = env.SLURM_NTASKS_PER_NODE?.match(/^\d+/)?.[0];
  const localWorldSize =
    opts.localWorldSize ??
    intFrom(env, ['LOCAL_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_SIZE']) ??
    (slurmPerNode !== undefined ? Number(slurmPerNode) : undefined) ??
    worldSize;
  if (worldSize < 1) throw new CommError(`world size must be at least 1, got ${worldSize}`);
  if (rank >= worldSize)
    throw new CommError(`rank ${rank} is not below the world size ${worldSize} (check RANK and WORLD_SIZE)`);
  if (localRank >= localWorldSize) {
    throw new CommError(
      `local rank ${localRank} is not below the local world size ${localWorldSize} (check LOCAL_RANK and LOCAL_WORLD_SIZE)`,
    );
  }
  const masterAddr = opts.masterAddr ?? (env.MASTER_ADDR || '127.0.0.1');
  const portFromEnv = intFrom(env, ['MASTER_PORT']);
  // a lone process with no MASTER_PORT hosts its store on a free port instead of colliding on 29500
  const masterPort = opts.masterPort ?? portFromEnv ?? (worldSize === 1 ? 0 : DEFAULT_MASTER_PORT);
  if (masterPort > 65535) throw new CommError(`MASTER_PORT ${masterPort} is not a TCP port`);
  const timeoutMs = opts.timeoutMs ?? intFrom(env, ['ZEROFLOW_COMM_TIMEOUT_MS']) ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new CommError(`the comm timeout must be > 0 ms, got ${timeoutMs}`);
  const hosted =
    env.ZEROFLOW_STORE_HOSTED !== undefined && env.ZEROFLOW_STORE_HOSTED !== '' && env.ZEROFLOW_STORE_HOSTED !== '0';
  return {
    rank,
    worldSize,
    localRank,
    localWorldSize,
    masterAddr,
    masterPort,
    token: opts.token ?? env.ZEROFLOW_JOB_TOKEN ?? '',
    timeoutMs,
    hostsStore: rank === 0 && !hosted,
    backend: opts.backend ?? (env.ZEROFLOW_COMM || undefined),
  };
}

/** The backend name to use: the one asked for, else `shm` when it can run (one host), else `tcp`. */
export function chooseCommBackend(d: DistributedEnv): string {
  if (d.backend) return d.backend;
  const shm = getCommBackend('shm');
  if (shm && d.localWorldSize === d.worldSize && shm.available().ok) return 'shm';
  return 'tcp';
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * Joins the job: hosts the rendezvous store on rank 0 (unless the launcher already does), connects to it,
 * and forms the world group with the chosen backend. Every rank of the job must call it.
 */
export async function initDistributed(opts: InitDistributedOptions = {}): Promise<DistributedContext> {
  const d = resolveDistributedEnv(opts, opts.env ?? process.env);
  const name = chooseCommBackend(d);
  const backend = getCommBackend(name);
  if (!backend) {
    const known = listCommBackends();
    throw new CommError(
      `comm backend "${name}" is not registered (registered: ${known.length ? known.join(', ') : 'none'}); ` +
        `install @zeroflow/comm-${name} and import it before initDistributed`,
    );
  }
  const avail = backend.available();
  if (!avail.ok) throw new CommError(`comm backend "${name}" cannot run here: ${avail.reason ?? 'unavailable'}`);

  let server: TCPStoreServer | undefined;
  if (d.hostsStore) {
    // bind loopback only when the job is local; otherwise every interface, so that other hosts reach it
    server = await TCPStoreServer.listen({
      host: isLoopback(d.masterAddr) ? d.masterAddr.replace('localhost', '127.0.0.1') : '0.0.0.0',
      port: d.masterPort,
      token: d.token,
    });
  }
  let store: TCPStore | undefined;
  try {
    store = await TCPStore.connect({
      host: d.masterAddr,
      port: server ? server.port : d.masterPort,
      token: d.token,
      timeoutMs: d.timeoutMs,
    });
    const world = await backend.createWorldGroup({
      rank: d.rank,
      worldSize: d.worldSize,
      localRank: d.localRank,
      localWorldSize: d.localWorldSize,
      store,
      timeoutMs: d.timeoutMs,
      token: d.token,
    });
    const connected = store;
    let closed = false;
    return {
      world,
      store: connected,
      async close() {
        if (closed) return;
        closed = true;
        world.destroy();
        try {
          await connected.set(`zeroflow/left/${d.rank}`, '1');
          if (server) {
            // keep serving until every rank has left, so that late ranks can still use the store
            const keys = Array.from({ length: d.worldSize }, (_, r) => `zeroflow/left/${r}`);
            await connected.wait(keys, Math.min(d.timeoutMs, 60_000)).catch(() => {});
          }
        } finally {
          connected.close();
          await server?.close();
        }
      },
    };
  } catch (err) {
    store?.close();
    await server?.close();
    throw err;
  }
}
