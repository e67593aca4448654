/** Spawns N real rank processes of a script (PyTorch's env contract) and collects their exits. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

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

/** Runs `script args` as `n` ranks on this host with the given extra env; resolves when all have exited. */
export async function runRanks(
  n: number,
  script: string,
  args: (rank: number) => string[],
  env: NodeJS.ProcessEnv = {},
  timeoutMs = 120_000,
): Promise<RankExit[]> {
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  return Promise.all(
    Array.from(
      { length: n },
      (_, rank) =>
        new Promise<RankExit>((resolve) => {
          const child = spawn(process.execPath, ['--import', 'tsx', script, ...args(rank)], {
            env: {
              ...process.env,
              RANK: String(rank),
              WORLD_SIZE: String(n),
              LOCAL_RANK: String(rank),
              LOCAL_WORLD_SIZE: String(n),
              MASTER_ADDR: '127.0.0.1',
              MASTER_PORT: String(port),
              ZEROFLOW_JOB_TOKEN: token,
              ...env,
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          let output = '';
          child.stdout.on('data', (d) => (output += d));
          child.stderr.on('data', (d) => (output += d));
          const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
          child.on('exit', (code) => {
            clearTimeout(timer);
            resolve({ rank, code, output });
          });
        }),
    ),
  );
}
