/**
 * Spawns N real rank processes (node + tsx running test/rank-main.ts) with the PyTorch env contract and a
 * job token, and collects their exit codes and output.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const RANK_MAIN = join(here, 'rank-main.ts');

export interface RankOutcome {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  results: any[];
}

/** A port that was free a moment ago. */
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

export interface Job {
  procs: ChildProcess[];
  outcomes: Promise<RankOutcome[]>;
  /** Resolves when rank `r` has printed `text`. */
  printed(r: number, text: string): Promise<void>;
}

/** Starts `n` ranks of `scenario`; `envFor(rank)` adds or overrides env per rank. */
export async function launch(
  n: number,
  scenario: string,
  envFor: (rank: number) => Record<string, string> = () => ({}),
): Promise<Job> {
  const port = await freePort();
  const token = randomBytes(16).toString('hex');
  const procs: ChildProcess[] = [];
  const outs: { stdout: string; stderr: string }[] = [];
  const outcomes: Promise<RankOutcome>[] = [];
  for (let rank = 0; rank < n; rank++) {
    const env = {
      ...process.env,
      RANK: String(rank),
      WORLD_SIZE: String(n),
      LOCAL_RANK: String(rank),
      LOCAL_WORLD_SIZE: String(n),
      MASTER_ADDR: '127.0.0.1',
      MASTER_PORT: String(port),
      ZEROFLOW_JOB_TOKEN: token,
      ZEROFLOW_COMM: 'tcp',
      ZF_TEST_SCENARIO: scenario,
      ...envFor(rank),
    };
    const p = spawn(process.execPath, ['--import', 'tsx', RANK_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    p.stdout!.on('data', (d) => (out.stdout += d));
    p.stderr!.on('data', (d) => (out.stderr += d));
    procs.push(p);
    outs.push(out);
    outcomes.push(
      new Promise((resolve) =>
        p.on('close', (code, signal) =>
          resolve({
            rank,
            code,
            signal,
            ...out,
            results: out.stdout
              .split('\n')
              .filter((l) => l.startsWith('RESULT '))
              .map((l) => JSON.parse(l.slice(7))),
          }),
        ),
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
