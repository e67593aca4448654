/**
 * Runs one multi-process benchmark job on this host: `n` rank processes of a script (node + tsx) with
 * PyTorch's env contract (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR/MASTER_PORT of a free
 * port) and one fresh ZEROFLOW_JOB_TOKEN, collecting the JSON result lines the ranks print. Shared by
 * comm.ts and zero.ts. (packages/test-utils has the tests' equivalent; benchmarks do not depend on test code.)
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';

/** A port that was free a moment ago, for one job's rendezvous store. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** One job: which script, how many ranks, and what the ranks print their results after. */
export interface RankJobSpec {
  script: string;
  n: number;
  /** Each stdout line starting with this is `prefix + JSON` of one result. */
  resultPrefix: string;
  /** Env over the contract, the same for every rank. */
  env?: Record<string, string>;
  /** Node options before `--import tsx` (e.g. `--expose-gc`). */
  nodeArgs?: string[];
}

/**
 * Runs the job and returns every result line its ranks printed, in the order the ranks exited.
 * @throws Error naming the first rank that exited non-zero, with the tail of its stderr
 */
export async function runRankJob<T>(spec: RankJobSpec): Promise<T[]> {
  const { script, n, resultPrefix } = spec;
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const results: T[] = [];
  const exits = Array.from({ length: n }, (_, rank) => {
    const child = spawn(process.execPath, [...(spec.nodeArgs ?? []), '--import', 'tsx', script], {
      env: {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(n),
        LOCAL_RANK: String(rank),
        LOCAL_WORLD_SIZE: String(n),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        ZEROFLOW_JOB_TOKEN: token,
        ...spec.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    return new Promise<void>((resolve, reject) =>
      child.on('close', (code, signal) => {
        for (const line of out.split('\n'))
          if (line.startsWith(resultPrefix)) results.push(JSON.parse(line.slice(resultPrefix.length)));
        if (code === 0) resolve();
        else reject(new Error(`rank ${rank} of ${n} exited with ${code ?? signal}:\n${err.slice(-2000)}`));
      }),
    );
  });
  // Wait for every rank before throwing, so that no rank outlives the job.
  const settled = await Promise.allSettled(exits);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results;
}
