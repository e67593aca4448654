/**
 * Loaded into every rank the local launcher spawns (`node --require <dist>/rank-preload.cjs script`): the
 * parent-death watchdog. Linux's PR_SET_PDEATHSIG is not reachable from Node, so a worker thread polls
 * `getppid()`: once the launcher is gone (it was SIGKILLed, so it could not stop the ranks itself) the rank
 * is re-parented, and the watchdog sends SIGTERM to the rank's process group (the rank and anything it
 * spawned; the launcher starts each rank as a group leader), then SIGKILL after the grace period.
 *
 * It runs in a worker so that it acts even while the main thread is blocked in a collective's `wait()`.
 * It is inert unless ZEROFLOW_LAUNCHER_PID names this process's parent, so processes the rank forks (which
 * inherit execArgv) do not watch the wrong parent.
 */
import { Worker } from 'node:worker_threads';

/** The watchdog thread; `workerData` carries what it needs. */
const WATCHDOG = `
const { writeSync } = require('node:fs');
const { workerData } = require('node:worker_threads');
const { launcherPid, rank, graceMs, pollMs } = workerData;
const timer = setInterval(() => {
  if (process.ppid === launcherPid) return;
  clearInterval(timer);
  // straight to fd 2: the launcher held the other end of that pipe, so this may fail with EPIPE, and
  // process.stderr would report that as an uncaught error that kills the rank alone, orphaning its children
  try {
    writeSync(2, '[rank ' + rank + '] zeroflow: the launcher (pid ' + launcherPid + ') is gone; stopping this rank\\n');
  } catch {}
  const kill = (signal) => {
    try { process.kill(-process.pid, signal); } catch { try { process.kill(process.pid, signal); } catch {} }
  };
  kill('SIGTERM');
  setTimeout(() => kill('SIGKILL'), graceMs);
}, pollMs);
`;

const launcherPid = Number(process.env.ZEROFLOW_LAUNCHER_PID);
if (Number.isInteger(launcherPid) && launcherPid > 0 && process.ppid === launcherPid) {
  const graceMs = Number(process.env.ZEROFLOW_KILL_GRACE_MS) || 5000;
  const worker = new Worker(WATCHDOG, {
    eval: true,
    workerData: { launcherPid, rank: process.env.RANK ?? '?', graceMs, pollMs: 200 },
    // the watchdog needs none of the rank's flags (--import tsx would load a loader into it)
    execArgv: [],
    stdout: false,
    stderr: false,
  });
  worker.unref(); // never keeps the rank alive
}
