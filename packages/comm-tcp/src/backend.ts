import { MessageChannel, Worker } from 'node:worker_threads';
import { type BackendInit, type CommBackend, CommError, type ProcessGroup, TCPStore } from '@zeroflow/core';
import { CONTROL_SLOTS, StagingPool, WorkerChannel } from './channel.js';
import { TcpProcessGroup } from './group.js';
import type { WorkerConfig } from './wire.js';

/** Default pipeline segment; `ZEROFLOW_TCP_SEGMENT_BYTES` overrides it. */
export const DEFAULT_SEGMENT_BYTES = 4 << 20;

let worldsCreated = 0;

const fromSource = import.meta.url.endsWith('.ts');

/**
 * dist/worker.mjs next to the built bundle; from source (tests under tsx) a bootstrap that registers tsx's
 * loader in the worker first (a worker does not inherit the parent's `--import` hooks).
 */
function workerEntry(): URL | string {
  if (!fromSource) return new URL('./worker.mjs', import.meta.url);
  const api = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./worker.ts', import.meta.url).href;
  return `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
}

/** The address peers should use to reach this rank: env override, else the interface that reaches the store. */
function advertisedHost(store: BackendInit['store']): string {
  const fromEnv = process.env.ZEROFLOW_TCP_HOST;
  if (fromEnv) return fromEnv;
  const local = store instanceof TCPStore ? store.localAddress : undefined;
  if (!local) return '127.0.0.1';
  return local.startsWith('::ffff:') ? local.slice(7) : local;
}

function positiveIntEnv(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const x = Number(v);
  if (!Number.isInteger(x) || x <= 0)
    throw new CommError(`environment variable ${name}="${v}" must be a positive integer`);
  return x;
}

function nextMessage(worker: Worker, wanted: string): Promise<{ type: string; [k: string]: unknown }> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type: string; message?: string }) => {
      if (m.type !== wanted && m.type !== 'error') return;
      cleanup();
      if (m.type === 'error') reject(new CommError(`tcp backend: ${m.message}`));
      else resolve(m);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new CommError(`tcp backend: the socket worker failed to start: ${err.message}`));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
  });
}

/**
 * Forms the world group: starts the socket worker, publishes this rank's listening address in the store,
 * connects the full mesh, and returns once every peer is connected both ways.
 */
async function createWorldGroup(init: BackendInit): Promise<ProcessGroup> {
  const generation = worldsCreated++;
  const host = advertisedHost(init.store);
  const control = new SharedArrayBuffer(CONTROL_SLOTS * 4);
  const completions = new MessageChannel();
  const config: WorkerConfig = {
    rank: init.rank,
    worldSize: init.worldSize,
    token: init.token,
    listenHost: host,
    control,
    segmentBytes: positiveIntEnv('ZEROFLOW_TCP_SEGMENT_BYTES', DEFAULT_SEGMENT_BYTES),
    connectTimeoutMs: init.timeoutMs,
  };
  const worker = new Worker(workerEntry(), {
    eval: fromSource,
    workerData: { config, completions: completions.port2 },
    transferList: [completions.port2],
  });
  try {
    const listening = nextMessage(worker, 'listening');
    worker.postMessage({ type: 'listen' });
    const { port } = (await listening) as unknown as { port: number };
    const prefix = `zeroflow/tcp/${generation}/addr/`;
    await init.store.set(`${prefix}${init.rank}`, `${host}:${port}`);
    const addresses: string[] = [];
    for (let r = 0; r < init.worldSize; r++) {
      addresses.push(Buffer.from(await init.store.get(`${prefix}${r}`, init.timeoutMs)).toString('utf8'));
    }
    const ready = nextMessage(worker, 'ready');
    worker.postMessage({ type: 'connect', addresses });
    await ready;
  } catch (err) {
    void worker.terminate();
    throw err;
  }
  const channel = new WorkerChannel(worker, control, completions.port1);
  const ranks = Array.from({ length: init.worldSize }, (_, r) => r);
  return new TcpProcessGroup(
    { channel, pool: new StagingPool(), timeoutMs: init.timeoutMs, worldSize: init.worldSize },
    'world',
    ranks,
    init.rank,
  );
}

/** The `tcp` backend: pure TypeScript, any host, no native dependencies. */
export const tcpBackend: CommBackend = {
  name: 'tcp',
  available: () => ({ ok: true }),
  createWorldGroup,
};
