/**
 * What a `zeroflow run` job starts: the per-rank environment contract and the command lines of each
 * launcher (local processes, ssh per node, mpirun, srun). Pure functions, so the command lines of launchers
 * that cannot run here (mpirun, slurm, real ssh) are tested exactly.
 */
import { ZeroFlowError } from '@zeroflow/core';
import type { HostSlots } from './hostfile.js';

/** A job that cannot be launched as asked (the message says why and what to change). */
export class LaunchError extends ZeroFlowError {}

/** How ranks are started. */
export type LauncherKind = 'local' | 'ssh' | 'mpirun' | 'slurm';

/** A node of the job: its host, slot ids and the global rank of its first rank. */
export interface PlannedNode extends HostSlots {
  rankOffset: number;
}

/** Everything needed to start the job's ranks. */
export interface LaunchPlan {
  launcher: LauncherKind;
  nodes: PlannedNode[];
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** The user's script, as given (relative to `cwd`), and its arguments. */
  script: string;
  scriptArgs: string[];
  cwd: string;
  /** The node executable (this launcher's `process.execPath`; remote hosts are assumed to have the same). */
  nodeExec: string;
  /** Node flags before the script: `--import <tsx>` for TypeScript. */
  nodeArgs: string[];
  /** Extra variables for every rank (ZEROFLOW_COMM, ZEROFLOW_COMM_TIMEOUT_MS). */
  env: Record<string, string>;
}

/** One process to start. */
export interface CommandLine {
  command: string;
  args: string[];
  /** Variables set for the process on top of the inherited environment. */
  env: Record<string, string>;
}

/** Gives each node its first global rank (nodes in hostfile order, ranks in slot order). */
export function planNodes(hosts: HostSlots[]): { nodes: PlannedNode[]; worldSize: number } {
  let offset = 0;
  const nodes = hosts.map((h) => {
    const node = { host: h.host, slots: [...h.slots], rankOffset: offset };
    offset += h.slots.length;
    return node;
  });
  return { nodes, worldSize: offset };
}

/** Matches the file names `node --import tsx` must load. */
export function isTypeScript(script: string): boolean {
  return /\.[cm]?tsx?$/.test(script);
}

/** Variables every rank of the job gets, whatever the launcher (before per-rank RANK/LOCAL_RANK). */
export function jobEnv(plan: LaunchPlan, restartCount: number): Record<string, string> {
  return {
    ...plan.env,
    WORLD_SIZE: String(plan.worldSize),
    MASTER_ADDR: plan.masterAddr,
    MASTER_PORT: String(plan.masterPort),
    // the launcher hosts the rendezvous store, so rank 0's event loop never has to serve it
    ZEROFLOW_STORE_HOSTED: '1',
    ZEROFLOW_RESTART_COUNT: String(restartCount),
  };
}

/**
 * The processes of one node's ranks, started directly by a local launcher or a node agent. The job token is
 * not in the result: the caller adds ZEROFLOW_JOB_TOKEN so that it never appears in a printed command.
 */
export function rankCommands(
  plan: LaunchPlan,
  node: PlannedNode,
  restartCount: number,
): (CommandLine & { rank: number })[] {
  return node.slots.map((slot, localRank) => {
    const rank = node.rankOffset + localRank;
    return {
      rank,
      command: plan.nodeExec,
      args: [...plan.nodeArgs, plan.script, ...plan.scriptArgs],
      env: {
        ...jobEnv(plan, restartCount),
        RANK: String(rank),
        LOCAL_RANK: String(localRank),
        LOCAL_WORLD_SIZE: String(node.slots.length),
        // the hostfile slot this rank was given (DeepSpeed's device id): slots may be sparse after --include
        ZEROFLOW_LOCAL_SLOT: String(slot),
        // our supervisor prefixes every output line with the rank: ranks' own loggers leave theirs out
        ZEROFLOW_RANK_PREFIXED: '1',
      },
    };
  });
}

/** Quotes a word for a POSIX shell (the remote side of ssh). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

/** A command as one shell line: `VAR=value ... command args`. */
export function formatCommand(line: CommandLine): string {
  const env = Object.entries(line.env).map(([k, v]) => `${k}=${shellQuote(v)}`);
  return [...env, shellQuote(line.command), ...line.args.map(shellQuote)].join(' ');
}

/** Variables of the launcher's own environment that follow the ranks to other hosts. */
export function forwardedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || k === 'ZEROFLOW_JOB_TOKEN') continue;
    if (k.startsWith('ZEROFLOW_') || k === 'NODE_OPTIONS' || k === 'NODE_PATH') out[k] = v;
  }
  return out;
}

/** Options of {@link sshCommands}. */
export interface SshOptions {
  /** The ssh program (env ZEROFLOW_SSH, default `ssh`), split on spaces: `ssh -p 2222` works. */
  ssh: string;
  /** Absolute path of the zeroflow CLI entry (same path on every host). */
  cliEntry: string;
  /** From {@link forwardedEnv}. */
  forwarded: Record<string, string>;
  /** Extra `zeroflow run` options for the agents (--grace-ms). */
  agentOptions: string[];
}

/**
 * One ssh per node, each starting a node agent (`zeroflow run --node-agent`) that spawns, prefixes and
 * supervises that node's ranks. The job token is not on the command line (visible in `ps`): the launcher
 * writes it to ssh's stdin, and the agent stops its ranks when that stdin closes (the launcher died or
 * dropped the connection).
 */
export function sshCommands(
  plan: LaunchPlan,
  opts: SshOptions,
  restartCount: number,
): (CommandLine & { node: PlannedNode })[] {
  const [sshProgram = 'ssh', ...sshArgs] = opts.ssh.split(/\s+/).filter(Boolean);
  return plan.nodes.map((node) => {
    const env = { ...opts.forwarded, ...plan.env, ZEROFLOW_RESTART_COUNT: String(restartCount) };
    const agent = [
      plan.nodeExec,
      opts.cliEntry,
      'run',
      '--node-agent',
      '--rank-offset',
      String(node.rankOffset),
      '--world-size',
      String(plan.worldSize),
      '--nproc-per-node',
      String(node.slots.length),
      '--slots',
      node.slots.join(','),
      '--master-addr',
      plan.masterAddr,
      '--master-port',
      String(plan.masterPort),
      ...opts.agentOptions,
      '--',
      plan.script,
      ...plan.scriptArgs,
    ];
    // `env K=V cmd` rather than `K=V cmd`: it works whatever the remote login shell is (csh, fish)
    const pairs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
    const remote = `cd ${shellQuote(plan.cwd)} && ${formatCommand({ command: 'env', args: [...pairs, ...agent], env: {} })}`;
    return { node, command: sshProgram, args: [...sshArgs, '-o', 'BatchMode=yes', node.host, remote], env: {} };
  });
}

/**
 * The mpirun command line (Open MPI): ranks read OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK/LOCAL_SIZE. Variables
 * are exported with `-x`; the token is exported by name only, from mpirun's environment.
 */
export function mpirunCommand(plan: LaunchPlan, restartCount: number): CommandLine {
  const env = jobEnv(plan, restartCount);
  const hosts = plan.nodes.map((n) => `${n.host}:${n.slots.length}`).join(',');
  const exports = Object.entries(env).flatMap(([k, v]) => ['-x', `${k}=${v}`]);
  return {
    command: 'mpirun',
    args: [
      '-np',
      String(plan.worldSize),
      '-H',
      hosts,
      '--bind-to',
      'none',
      '--tag-output',
      ...exports,
      '-x',
      'ZEROFLOW_JOB_TOKEN',
      plan.nodeExec,
      ...plan.nodeArgs,
      plan.script,
      ...plan.scriptArgs,
    ],
    env: {},
  };
}

/**
 * The srun command line (Slurm): ranks read SLURM_PROCID/NTASKS/LOCALID/NTASKS_PER_NODE. `--export=ALL,...`
 * passes the launcher's environment (with the token) plus the job variables.
 */
export function srunCommand(plan: LaunchPlan, restartCount: number): CommandLine {
  const perNode = plan.nodes[0]?.slots.length ?? 1;
  if (plan.nodes.some((n) => n.slots.length !== perNode)) {
    throw new LaunchError(
      `the slurm launcher needs the same number of ranks on every node, got ${plan.nodes.map((n) => `${n.host}:${n.slots.length}`).join(', ')}`,
    );
  }
  const env = jobEnv(plan, restartCount);
  const exports = ['ALL', ...Object.entries(env).map(([k, v]) => `${k}=${v}`)].join(',');
  return {
    command: 'srun',
    args: [
      '--ntasks',
      String(plan.worldSize),
      '--nodes',
      String(plan.nodes.length),
      '--ntasks-per-node',
      String(perNode),
      ...(plan.nodes.length > 1 || plan.nodes[0]?.host !== 'localhost'
        ? ['--nodelist', plan.nodes.map((n) => n.host).join(',')]
        : []),
      '--label',
      '--kill-on-bad-exit=1',
      `--export=${exports}`,
      plan.nodeExec,
      ...plan.nodeArgs,
      plan.script,
      ...plan.scriptArgs,
    ],
    env: {},
  };
}
