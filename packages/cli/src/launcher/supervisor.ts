/**
 * Runs one attempt of a job: starts its processes (ranks, or one ssh/mpirun/srun), streams their output,
 * and stops all of them when one fails or the launcher is interrupted. Each child is started in its own
 * process group (`detached`), and every stop signal goes to the whole group, so that whatever a rank spawned
 * stops with it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { type OutputSink, pipePrefixed } from './line-prefixer.js';

/** One process of the attempt. */
export interface ChildSpec {
  /** How messages name it: `rank 1`, `node host2 (ranks 2-3)`, `mpirun`. */
  name: string;
  command: string;
  args: string[];
  /** The complete environment of the child. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Prefix of each output line (`[rank 1] `); empty passes the output through unchanged. */
  prefix: string;
  /** Written to the child's stdin, which then stays open (ssh: the job token); absent: stdin is /dev/null. */
  stdin?: string;
}

/** How an attempt ended. */
export type AttemptOutcome =
  | { kind: 'succeeded' }
  | { kind: 'failed'; name: string; exitCode: number; description: string }
  | { kind: 'interrupted'; signal: NodeJS.Signals; exitCode: number };

/** Options of {@link JobAttempt}. */
export interface AttemptOptions {
  stdout: OutputSink;
  stderr: OutputSink;
  /** Writes one launcher message line (the caller adds `zeroflow run: `). */
  log: (message: string) => void;
  /** Time between SIGTERM (or the forwarded signal) and SIGKILL, ms. */
  graceMs: number;
}

interface Running {
  spec: ChildSpec;
  child: ChildProcess;
  exited: boolean;
  closed: boolean;
}

/** The shell's exit status for a death by `signal`: 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/**
 * Signals a child's process group (the child leads it: spawned detached). Never the bare pid: once the child
 * is reaped its pid may belong to an unrelated process, while a group id stays reserved as long as any member
 * lives. Never throws.
 */
function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is empty: nothing left to stop
  }
}

/** One attempt: {@link start} resolves once every child exited and its output was drained. */
export class JobAttempt {
  private readonly running: Running[] = [];
  private failure: Extract<AttemptOutcome, { kind: 'failed' }> | undefined;
  private interruptedBy: NodeJS.Signals | undefined;
  private stopping = false;
  private killTimer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private resolve: ((outcome: AttemptOutcome) => void) | undefined;
  private finished = false;

  constructor(
    private readonly specs: ChildSpec[],
    private readonly opts: AttemptOptions,
  ) {}

  /** Starts every child; resolves with the outcome once all have exited. */
  start(): Promise<AttemptOutcome> {
    return new Promise((resolve) => {
      this.resolve = resolve;
      for (const spec of this.specs) {
        if (this.stopping) break; // an earlier child could not even start
        this.spawnOne(spec);
      }
      this.maybeFinish();
    });
  }

  /**
   * The launcher got `signal`: forward it to every child's group (Ctrl-C reaches all ranks), SIGKILL after the
   * grace period. A second interrupt kills at once.
   */
  interrupt(signal: NodeJS.Signals): void {
    if (this.finished) return;
    if (this.interruptedBy) {
      this.opts.log(`received ${signal} again; killing every rank now`);
      this.signalLive('SIGKILL');
      return;
    }
    this.interruptedBy = signal;
    const live = this.live();
    this.opts.log(
      `received ${signal}; stopping ${live.length} process${live.length === 1 ? '' : 'es'} (again to kill now)`,
    );
    this.stop(signal);
  }

  /** SIGKILLs every group at once, synchronously (for the launcher's own `exit`). */
  killNow(): void {
    for (const r of this.running) signalGroup(r.child.pid, 'SIGKILL');
  }

  private live(): Running[] {
    return this.running.filter((r) => !r.exited);
  }

  private spawnOne(spec: ChildSpec): void {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true, // own process group: the launcher signals the group, and Ctrl-C goes to the launcher only
      stdio: [spec.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const r: Running = { spec, child, exited: false, closed: false };
    this.running.push(r);
    if (spec.stdin !== undefined && child.stdin) {
      child.stdin.on('error', () => {}); // the child may exit before reading
      child.stdin.write(spec.stdin);
    }
    if (child.stdout) pipePrefixed(child.stdout, spec.prefix, this.opts.stdout);
    if (child.stderr) pipePrefixed(child.stderr, spec.prefix, this.opts.stderr);
    child.on('error', (err) => {
      // spawn failed (ENOENT: no such program): no exit event follows
      if (r.exited) return;
      r.exited = true;
      r.closed = true;
      this.onFailure(r, 127, `could not be started: ${err.message}`);
      this.maybeFinish();
    });
    child.on('exit', (code, signal) => {
      r.exited = true;
      child.stdin?.destroy();
      if (code !== 0) {
        const exitCode = signal ? signalExitCode(signal) : (code ?? 1);
        this.onFailure(r, exitCode, signal ? `was killed by ${signal}` : `exited with code ${code}`);
      }
      this.maybeFinish();
    });
    child.on('close', () => {
      r.closed = true;
      this.maybeFinish();
    });
  }

  /** The first failure decides the outcome; the other children are stopped. */
  private onFailure(r: Running, exitCode: number, description: string): void {
    if (this.stopping) return; // a consequence of stopping (or of the first failure), not a cause
    this.failure = { kind: 'failed', name: r.spec.name, exitCode, description };
    const live = this.live();
    this.opts.log(
      `${r.spec.name} ${description}${live.length ? `; stopping ${live.length} other process${live.length === 1 ? '' : 'es'}` : ''}`,
    );
    this.stop('SIGTERM');
  }

  private stop(signal: NodeJS.Signals): void {
    this.stopping = true;
    this.signalLive(signal);
    this.killTimer ??= setTimeout(() => {
      const stuck = this.live();
      if (stuck.length) {
        this.opts.log(
          `${stuck.map((r) => r.spec.name).join(', ')} still running after ${this.opts.graceMs} ms; sending SIGKILL`,
        );
      }
      this.signalLive('SIGKILL');
    }, this.opts.graceMs);
  }

  private signalLive(signal: NodeJS.Signals): void {
    for (const r of this.live()) signalGroup(r.child.pid, signal);
  }

  private maybeFinish(): void {
    if (this.finished || !this.resolve) return;
    if (this.running.length < this.specs.length && !this.stopping) return; // still starting
    if (this.running.some((r) => !r.exited)) return;
    if (!this.drainTimer) {
      // every child exited: kill what they left behind in their groups, whose open pipes would otherwise
      // keep the output streams (and this attempt) from ever closing
      for (const r of this.running) signalGroup(r.child.pid, 'SIGKILL');
      this.drainTimer = setTimeout(() => {
        for (const r of this.running) {
          r.child.stdout?.destroy();
          r.child.stderr?.destroy();
          r.closed = true;
        }
        this.maybeFinish();
      }, 2000);
    }
    if (this.running.some((r) => !r.closed)) return;
    this.finished = true;
    clearTimeout(this.killTimer);
    clearTimeout(this.drainTimer);
    const outcome: AttemptOutcome = this.interruptedBy
      ? { kind: 'interrupted', signal: this.interruptedBy, exitCode: signalExitCode(this.interruptedBy) }
      : (this.failure ?? { kind: 'succeeded' });
    this.resolve(outcome);
  }
}
