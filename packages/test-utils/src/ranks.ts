/** Spawns N real rank processes of a script (PyTorch's env contract) and collects their exits. */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

/** A port that was free a moment ago, for one job's rendezvous store. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface RankExit {
  rank: number;
  code: number | null;
  output: string;
}

/** How one rank process ended, with its output. */
export interface RankOutcome {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, in the order they arrived. */
  output: string;
}

/** A started job: its processes and how they end. */
export interface RankJob {
  procs: ChildProcess[];
  /** Resolves, in rank order, once every rank has exited and closed its output. */
  outcomes: Promise<RankOutcome[]>;
  /** Resolves when rank `r` has printed `text` on stdout (e.g. to kill it at a known point). */
  printed(r: number, text: string): Promise<void>;
}

/** Options of {@link spawnRanks}. */
export interface SpawnRanksOptions {
  /** Node options before `--import tsx` (e.g. `--expose-gc`). */
  nodeArgs?: string[];
  /** Script arguments per rank. */
  args?: (rank: number) => string[];
  /** Env added per rank, over the contract (so a test can override e.g. ZEROFLOW_JOB_TOKEN). */
  env?: (rank: number) => NodeJS.ProcessEnv;
  /** Kill a rank with SIGKILL after this long; none when unset. */
  timeoutMs?: number;
  /** Working directory of the ranks (where they resolve packages by name); default this process's. */
  cwd?: string;
}

/**
 * Starts `n` ranks of `script` (run by node with tsx) on this host: RANK, WORLD_SIZE, LOCAL_RANK,
 * LOCAL_WORLD_SIZE, MASTER_ADDR/MASTER_PORT of a free port, and one fresh ZEROFLOW_JOB_TOKEN for the job.
 */
export async function spawnRanks(n: number, script: string, options: SpawnRanksOptions = {}): Promise<RankJob> {
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const procs: ChildProcess[] = [];
  const outs: RankOutcome[] = [];
  const outcomes: Promise<RankOutcome>[] = [];
  for (let rank = 0; rank < n; rank++) {
    const child = spawn(
      process.execPath,
      [...(options.nodeArgs ?? []), '--import', 'tsx', script, ...(options.args?.(rank) ?? [])],
      {
        cwd: options.cwd,
        env: {
          ...process.env,
          RANK: String(rank),
          WORLD_SIZE: String(n),
          LOCAL_RANK: String(rank),
          LOCAL_WORLD_SIZE: String(n),
          MASTER_ADDR: '127.0.0.1',
          MASTER_PORT: String(port),
          ZEROFLOW_JOB_TOKEN: token,
          ...options.env?.(rank),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const out: RankOutcome = { rank, code: null, signal: null, stdout: '', stderr: '', output: '' };
    child.stdout?.on('data', (d) => {
      out.stdout += d;
      out.output += d;
    });
    child.stderr?.on('data', (d) => {
      out.stderr += d;
      out.output += d;
    });
    const timer =
      options.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    procs.push(child);
    outs.push(out);
    outcomes.push(
      // 'close', not 'exit': by then every byte the rank wrote has been read.
      new Promise((resolve) =>
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          resolve(Object.assign(out, { code, signal }));
        }),
      ),
    );
  }
  return {
    procs,
    outcomes: Promise.all(outcomes),
    printed: (r, text) =>
      new Promise((resolve) => {
        const poll = () => (outs[r].stdout.includes(text) ? resolve() : setTimeout(poll, 20));
        poll();
      }),
  };
}

/** Runs `script args` as `n` ranks on this host with the given extra env; resolves when all have exited. */
export async function runRanks(
  n: number,
  script: string,
  args: (rank: number) => string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 120_000,
): Promise<RankExit[]> {
  const job = await spawnRanks(n, script, { args, env: () => env, timeoutMs });
  return (await job.outcomes).map(({ rank, code, output }) => ({ rank, code, output }));
}
