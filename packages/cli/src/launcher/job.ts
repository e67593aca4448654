/**
 * A whole `zeroflow run` job: hosts the rendezvous store, runs attempts (restarting every process when one
 * fails, up to `maxRestarts` times), and turns the launcher's own signals into a clean stop of every rank.
 */
import { randomBytes } from 'node:crypto';
import { TCPStoreServer } from '@zeroflow/core';
import type { OutputSink } from './line-prefixer.js';
import { LaunchError } from './plan.js';
import { type AttemptOutcome, type ChildSpec, JobAttempt, signalExitCode } from './supervisor.js';

/** Options of {@link runJob}. */
export interface JobOptions {
  /** Restarts allowed after a failed attempt (0: fail on the first failure). */
  maxRestarts: number;
  /**
   * Where the launcher hosts the store: every attempt gets a fresh one (no stale keys from the failed
   * attempt) on the same port (0: a free port, chosen by the first attempt). Absent: the store is hosted
   * elsewhere (a node agent of a multi-host job) and `token` is the job's.
   */
  store?: { bindHost: string; port: number };
  token?: string;
  /** The processes of attempt `attempt` (0-based), given the job token and the store's port. */
  children(attempt: number, token: string, port: number): ChildSpec[];
  /** Aborting it stops the job like SIGTERM (a node agent whose launcher went away). */
  abort?: AbortSignal;
  graceMs: number;
  stdout: OutputSink;
  stderr: OutputSink;
  /** Writes one launcher message line. */
  log(message: string): void;
}

const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Hosts the store; the error names the launcher's option rather than the ranks' MASTER_PORT. */
async function hostStore(host: string, port: number, token: string): Promise<TCPStoreServer> {
  try {
    return await TCPStoreServer.listen({ host, port, token });
  } catch (err) {
    const message = (err as Error).message.replace(/; choose another MASTER_PORT$/, '');
    throw new LaunchError(`${message}; pass another --master-port, or none for a free port`);
  }
}

/** Runs the job to the end and returns the launcher's exit status. */
export async function runJob(opts: JobOptions): Promise<number> {
  let current: JobAttempt | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted ??= signal;
    current?.interrupt(signal);
  };
  const onAbort = () => onSignal('SIGTERM');
  // last resort when the launcher exits abnormally (an exception): no rank outlives it
  const onExit = () => current?.killNow();
  for (const s of FORWARDED_SIGNALS) process.on(s, onSignal);
  opts.abort?.addEventListener('abort', onAbort);
  process.on('exit', onExit);
  if (opts.abort?.aborted) onAbort();

  let port = opts.store?.port ?? 0;
  try {
    for (let attempt = 0; ; attempt++) {
      if (interrupted) return signalExitCode(interrupted);
      const token = opts.store ? randomBytes(32).toString('hex') : (opts.token ?? '');
      const server = opts.store ? await hostStore(opts.store.bindHost, port, token) : undefined;
      if (server) port = server.port;
      let outcome: AttemptOutcome;
      try {
        current = new JobAttempt(opts.children(attempt, token, port), opts);
        // a signal that arrived while the store was starting applies to this attempt too
        if (interrupted) queueMicrotask(() => current?.interrupt(interrupted as NodeJS.Signals));
        outcome = await current.start();
      } finally {
        current = undefined;
        await server?.close();
      }
      if (outcome.kind === 'succeeded') return 0;
      if (outcome.kind === 'interrupted') return outcome.exitCode;
      if (attempt >= opts.maxRestarts || interrupted) {
        opts.log(`exiting with code ${outcome.exitCode} (${outcome.name} failed)`);
        return outcome.exitCode;
      }
      opts.log(`restarting every rank (restart ${attempt + 1} of ${opts.maxRestarts})`);
    }
  } finally {
    for (const s of FORWARDED_SIGNALS) process.off(s, onSignal);
    opts.abort?.removeEventListener('abort', onAbort);
    process.off('exit', onExit);
  }
}
