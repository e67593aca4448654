// `zeroflow run` end to end: the built CLI launches real rank processes (fixtures/), and the tests check
// outputs, exit statuses, and that no process of a job survives it.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(packageDir, 'dist', 'bin.cjs');
const fixtures = join(packageDir, 'test', 'fixtures');
const root = mkdtempSync(join(tmpdir(), 'zf-run-'));

interface Launched {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit status (128 + n for a signal, as a shell reports it). */
  exit: Promise<number>;
}

/** Starts the built `zeroflow` with `args` (cwd: the package, so fixtures resolve @zeroflow/*). */
function launch(args: string[], env: NodeJS.ProcessEnv = {}): Launched {
  const child = spawn(process.execPath, [bin, ...args], { cwd: packageDir, env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const exit = new Promise<number>((resolve) => {
    child.on('close', (code, signal) => resolve(code ?? (signal === 'SIGKILL' ? 137 : 128)));
  });
  return { child, stdout: () => out, stderr: () => err, exit };
}

/** Alive = exists and is not a zombie (a killed process whose parent has not reaped it yet). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Every pid the ranks wrote (each rank's own and its `sleep` child's). */
function jobPids(dir: string): number[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.pid'))
    .flatMap((f) => readFileSync(join(dir, f), 'utf8').trim().split('\n').map(Number));
}

/** Waits until none of `pids` is alive; returns the survivors after `ms`. */
async function survivors(pids: number[], ms = 3000): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitFor(condition: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 25));
  }
}

function pidDir(name: string): string {
  return mkdtempSync(join(root, `${name}-`));
}

beforeAll(() => {
  // nx builds before testing; a direct `vitest run` on a fresh checkout builds here.
  if (!existsSync(bin)) execFileSync('npx', ['tsup'], { cwd: packageDir, stdio: 'ignore' });
});

describe('zeroflow run', () => {
  it('runs 2 ranks of a TypeScript script that all-reduce over tcp, each line prefixed', async () => {
    const job = launch([
      'run',
      '--nproc-per-node',
      '2',
      '--comm',
      'tcp',
      '--timeout-ms',
      '20000',
      join(fixtures, 'allreduce.ts'),
    ]);
    expect(await job.exit).toBe(0);
    const lines = job.stdout().trim().split('\n').sort();
    expect(lines).toEqual(['[rank 0] backend=tcp sum=3 of 2', '[rank 1] backend=tcp sum=3 of 2']);
    // the partial last line (no newline) of each rank is flushed with its prefix
    expect(job.stderr()).toContain('[rank 0] done on local rank 0\n');
    expect(job.stderr()).toContain('[rank 1] done on local rank 1\n');
  });

  it('runs the shm backend when its native addon is built', async () => {
    const require = (await import('node:module')).createRequire(import.meta.url);
    const native = require('@zeroflow/native') as { loadShmAddon(): unknown };
    if (!native.loadShmAddon()) return; // the tcp test above covers the launcher itself
    const job = launch(['run', '--nproc-per-node', '2', '--comm', 'shm', join(fixtures, 'allreduce.ts')]);
    expect(await job.exit).toBe(0);
    expect(job.stdout()).toContain('[rank 0] backend=shm sum=3 of 2');
    expect(job.stdout()).toContain('[rank 1] backend=shm sum=3 of 2');
  });

  it("exits with a failing rank's code and stops the other rank and its children", async () => {
    const dir = pidDir('fail');
    const job = launch(['run', '--nproc-per-node', '2', join(fixtures, 'behave.mjs'), 'fail-rank1', dir]);
    expect(await job.exit).toBe(3);
    expect(job.stderr()).toMatch(/zeroflow run: rank 1 exited with code 3; stopping 1 other process/);
    const pids = jobPids(dir);
    expect(pids).toHaveLength(4); // 2 ranks + the `sleep` each spawned
    expect(await survivors(pids)).toEqual([]);
  });

  it('forwards SIGINT to every rank and leaves no process behind', async () => {
    const dir = pidDir('sigint');
    const job = launch(['run', '--nproc-per-node', '2', join(fixtures, 'behave.mjs'), 'sleep', dir]);
    await waitFor(() => (job.stdout().match(/ready/g) ?? []).length === 2);
    job.child.kill('SIGINT');
    expect(await job.exit).toBe(130);
    expect(job.stderr()).toContain('received SIGINT; stopping 2 processes');
    expect(await survivors(jobPids(dir))).toEqual([]);
  });

  it('ranks stop themselves when the launcher is SIGKILLed (parent-death watchdog)', async () => {
    const dir = pidDir('orphan');
    const job = launch(['run', '--nproc-per-node', '2', join(fixtures, 'behave.mjs'), 'sleep', dir]);
    await waitFor(() => (job.stdout().match(/ready/g) ?? []).length === 2);
    job.child.kill('SIGKILL');
    await job.exit;
    expect(await survivors(jobPids(dir), 5000)).toEqual([]);
  });

  it('--max-restarts 1 restarts every rank after a failure, and the second attempt succeeds', async () => {
    const dir = pidDir('restart');
    const job = launch([
      'run',
      '--nproc-per-node',
      '2',
      '--max-restarts',
      '1',
      join(fixtures, 'behave.mjs'),
      'restart',
      dir,
    ]);
    expect(await job.exit).toBe(0);
    expect(job.stderr()).toContain('rank 1 exited with code 5');
    expect(job.stderr()).toContain('restarting every rank (restart 1 of 1)');
    expect(job.stdout().trim().split('\n').sort()).toEqual(['[rank 0] ok on attempt 1', '[rank 1] ok on attempt 1']);
    expect(readdirSync(dir).sort()).toEqual([
      'rank0-attempt0.pid',
      'rank0-attempt1.pid',
      'rank1-attempt0.pid',
      'rank1-attempt1.pid',
    ]);
    expect(await survivors(jobPids(dir))).toEqual([]);
  });

  it('without restarts left, the failure ends the job', async () => {
    const dir = pidDir('norestart');
    const job = launch(['run', '--nproc-per-node', '2', join(fixtures, 'behave.mjs'), 'restart', dir]);
    expect(await job.exit).toBe(5);
    expect(job.stderr()).toContain('exiting with code 5 (rank 1 failed)');
  });

  it('runs a two-"host" job through the ssh launcher and its node agents', async () => {
    const hosts = join(root, 'hosts');
    writeFileSync(hosts, '# two names for this machine\nlocalhost slots=1\n\n127.0.0.1 slots=1 # second\n');
    const job = launch(
      [
        'run',
        '--hostfile',
        hosts,
        '--launcher',
        'ssh',
        '--master-addr',
        '127.0.0.1',
        '--comm',
        'tcp',
        join(fixtures, 'allreduce.ts'),
      ],
      { ZEROFLOW_SSH: join(fixtures, 'fake-ssh.sh') },
    );
    expect(await job.exit).toBe(0);
    expect(job.stdout().trim().split('\n').sort()).toEqual([
      '[rank 0] backend=tcp sum=3 of 2',
      '[rank 1] backend=tcp sum=3 of 2',
    ]);
  });

  it('fails clearly when the master port is taken', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const job = launch(['run', '--master-port', String(port), join(fixtures, 'behave.mjs'), 'sleep', root]);
      expect(await job.exit).toBe(1);
      expect(job.stderr()).toContain(`port ${port} on 127.0.0.1 is already in use`);
      expect(job.stderr()).toContain('--master-port');
    } finally {
      server.close();
    }
  });

  it('reports command-line and hostfile mistakes', async () => {
    const bad = join(root, 'bad-hosts');
    writeFileSync(bad, 'worker-0 slots=2\nworker-1 slot=2\n');
    const job = launch(['run', '--hostfile', bad, 'train.ts']);
    expect(await job.exit).toBe(2);
    expect(job.stderr()).toContain(`${bad}:2: expected "hostname slots=N", got "worker-1 slot=2"`);
    const missing = launch(['run', '--nproc-per-node', '0', 'train.ts']);
    expect(await missing.exit).toBe(64);
    expect(missing.stderr()).toContain('--nproc-per-node must be an integer from 1');
  });

  it('--dry-run prints the rank commands and starts nothing', async () => {
    const job = launch([
      'run',
      '--nproc-per-node',
      '2',
      '--master-port',
      '29555',
      '--dry-run',
      'train.ts',
      '--lr',
      '3',
    ]);
    expect(await job.exit).toBe(0);
    const lines = job.stdout().trim().split('\n');
    expect(lines[0]).toContain('rendezvous store at 127.0.0.1:29555');
    expect(lines[1]).toMatch(/RANK=0 LOCAL_RANK=0 LOCAL_WORLD_SIZE=2 .*--import \S*tsx\S* train\.ts --lr 3$/);
    expect(lines[2]).toContain('RANK=1');
    expect(job.stdout()).not.toMatch(/ZEROFLOW_JOB_TOKEN=[0-9a-f]{16}/);
  });
});
