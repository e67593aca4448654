/**
 * `zeroflow run [options] script [args...]`: the launcher. Starts the script as N ranks (on this machine, or
 * on many through ssh, mpirun or srun), hosts their rendezvous store, prefixes their output, and stops every
 * rank when one fails or the launcher is interrupted.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LAUNCHER_TTY_COLUMNS_ENV } from '@zeroflow/core';
import { type CliIO, type Command, EXIT, processIO, UsageError } from '../command.js';
import { intOption, parseRunArgs, type RunArgs } from '../launcher/args.js';
import {
  HostfileError,
  type HostSlots,
  isLocalHost,
  isLoopbackAddress,
  limitSlotsPerNode,
  parseHostfile,
  selectHosts,
} from '../launcher/hostfile.js';
import { runJob } from '../launcher/job.js';
import type { OutputSink } from '../launcher/line-prefixer.js';
import {
  type CommandLine,
  formatCommand,
  forwardedEnv,
  isTypeScript,
  LaunchError,
  type LauncherKind,
  type LaunchPlan,
  mpirunCommand,
  planNodes,
  rankCommands,
  srunCommand,
  sshCommands,
} from '../launcher/plan.js';
import { LiveProgressLine } from '../launcher/progress-line.js';
import type { ChildSpec } from '../launcher/supervisor.js';

const USAGE = `Usage: zeroflow run [options] <script> [script args...]

Runs a TypeScript (through tsx) or JavaScript script as N ranks. Each rank gets RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, ZEROFLOW_JOB_TOKEN and ZEROFLOW_RESTART_COUNT;
the launcher hosts the rendezvous store (ZEROFLOW_STORE_HOSTED=1). Output lines are prefixed "[rank N] ".
When a rank fails, the others are stopped and the launcher exits with that rank's status.

Options:
  --nproc-per-node N   ranks per node (default 1; with a hostfile: every slot of each host)
  --hostfile FILE      DeepSpeed hostfile: one "hostname slots=N" per line
  --include SPEC       only these hosts/slots, e.g. "worker-0:0,1@worker-1"
  --exclude SPEC       all but these hosts/slots (same syntax)
  --master-addr ADDR   address of the rendezvous store, reachable by every rank
                       (default 127.0.0.1 on one host, else this machine's hostname)
  --master-port PORT   its port (default: a free port)
  --launcher KIND      local | ssh | mpirun | slurm (default: local on one host, ssh for several)
  --max-restarts K     restart every rank when one fails, up to K times (default 0)
  --timeout-ms MS      comm and store timeout of the ranks (sets ZEROFLOW_COMM_TIMEOUT_MS)
  --comm NAME          comm backend of the ranks: shm | tcp (sets ZEROFLOW_COMM)
  --grace-ms MS        time between SIGTERM and SIGKILL when stopping ranks (default 5000)
  --dry-run            print the commands, run nothing
  -h, --help           show this help

Examples:
  zeroflow run --nproc-per-node 4 train.ts --epochs 3
  zeroflow run --hostfile hosts --include "worker-0:0,1@worker-1" train.ts
  zeroflow run --launcher mpirun --hostfile hosts --dry-run train.ts`;

const LAUNCHERS: readonly LauncherKind[] = ['local', 'ssh', 'mpirun', 'slurm'];
const DEFAULT_GRACE_MS = 5000;

/** dist/, where the bundled entry points live (tsup's shims give CJS builds `import.meta.url`). */
function distDir(): string {
  return dirname(fileURLToPath(import.meta.url));
}

/** The rank preload (parent-death watchdog); see launcher/rank-preload.ts. */
function rankPreloadPath(): string {
  const path = join(distDir(), 'rank-preload.cjs');
  if (!existsSync(path)) throw new LaunchError(`${path} is missing: build @zeroflow/cli (npx tsup in packages/cli)`);
  return path;
}

/** Node flags that make the script loadable: tsx's loader (resolved from this package) for TypeScript. */
function nodeArgsFor(script: string): string[] {
  if (!isTypeScript(script)) return [];
  const tsx = createRequire(import.meta.url).resolve('tsx');
  return ['--import', pathToFileURL(tsx).href];
}

/** Writes to a process stream, reporting backpressure so prefixed rank output pauses its source. */
function sinkOf(io: CliIO, which: 'stdout' | 'stderr'): OutputSink {
  if (io === processIO) return which === 'stdout' ? process.stdout : process.stderr;
  return {
    write: (text) => {
      io[which](text);
      return true;
    },
  };
}

/** A free TCP port on `host` (for --dry-run, which prints commands without hosting the store). */
function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolvePort(port));
    });
  });
}

/** The hosts and slots of the job, from the hostfile or `--nproc-per-node` on this machine. */
function resolveHosts(values: RunArgs['values']): HostSlots[] {
  const perNode = intOption('nproc-per-node', values['nproc-per-node'], 1, 4096);
  let hosts: HostSlots[];
  if (values.hostfile) {
    let text: string;
    try {
      text = readFileSync(values.hostfile, 'utf8');
    } catch (err) {
      throw new HostfileError(`cannot read hostfile ${values.hostfile}: ${(err as Error).message}`);
    }
    hosts = parseHostfile(text, values.hostfile);
  } else {
    hosts = [{ host: 'localhost', slots: Array.from({ length: perNode ?? 1 }, (_, s) => s) }];
  }
  hosts = selectHosts(hosts, values.include, values.exclude);
  return values.hostfile && perNode !== undefined ? limitSlotsPerNode(hosts, perNode) : hosts;
}

/** Builds the plan of a launcher run (not a node agent's). */
function buildPlan(args: RunArgs, script: string): LaunchPlan {
  const { values } = args;
  const hosts = resolveHosts(values);
  const allLocal = hosts.length === 1 && isLocalHost(hosts[0]?.host ?? '');
  const launcher = (values.launcher ?? (allLocal ? 'local' : 'ssh')) as LauncherKind;
  if (!LAUNCHERS.includes(launcher)) {
    throw new UsageError(`--launcher must be one of ${LAUNCHERS.join(', ')}, got "${values.launcher}"`);
  }
  if (launcher === 'local' && !allLocal) {
    throw new LaunchError(
      `--launcher local runs every rank on this machine, but the job has ${hosts.map((h) => h.host).join(', ')}; use --launcher ssh, mpirun or slurm`,
    );
  }
  const masterAddr = values['master-addr'] ?? (launcher === 'local' ? '127.0.0.1' : hostname());
  if (launcher !== 'local' && isLoopbackAddress(masterAddr) && !hosts.every((h) => isLocalHost(h.host))) {
    throw new LaunchError(
      `--master-addr ${masterAddr} is not reachable from the other hosts; give an address they can reach`,
    );
  }
  const env: Record<string, string> = {};
  const timeout = intOption('timeout-ms', values['timeout-ms'], 1);
  if (timeout !== undefined) env.ZEROFLOW_COMM_TIMEOUT_MS = String(timeout);
  if (values.comm !== undefined) {
    if (!/^[a-z][a-z0-9-]*$/.test(values.comm))
      throw new UsageError(`--comm must be a backend name such as shm or tcp`);
    env.ZEROFLOW_COMM = values.comm;
  }
  const { nodes, worldSize } = planNodes(hosts);
  return {
    launcher,
    nodes,
    worldSize,
    masterAddr,
    masterPort: intOption('master-port', values['master-port'], 0, 65535) ?? 0,
    script,
    scriptArgs: args.scriptArgs,
    cwd: process.cwd(),
    nodeExec: process.execPath,
    nodeArgs: nodeArgsFor(script),
    env,
  };
}

/** The processes of one attempt, for each launcher. `token` is only ever put in an environment or stdin. */
function childrenOf(plan: LaunchPlan, attempt: number, token: string, graceMs: number): ChildSpec[] {
  const base = { cwd: plan.cwd };
  const withToken = (line: CommandLine) => ({ ...process.env, ...line.env, ZEROFLOW_JOB_TOKEN: token });
  switch (plan.launcher) {
    case 'local': {
      const node = plan.nodes[0];
      if (!node) return [];
      return rankCommands(plan, node, attempt).map((line) => ({
        ...base,
        name: `rank ${line.rank}`,
        prefix: `[rank ${line.rank}] `,
        command: line.command,
        args: ['--require', rankPreloadPath(), ...line.args],
        env: {
          ...withToken(line),
          ZEROFLOW_LAUNCHER_PID: String(process.pid),
          ZEROFLOW_KILL_GRACE_MS: String(graceMs),
        },
      }));
    }
    case 'ssh':
      return sshCommands(plan, sshOptions(graceMs), attempt).map((line) => {
        const last = line.node.rankOffset + line.node.slots.length - 1;
        return {
          ...base,
          name: `node ${line.node.host} (${last === line.node.rankOffset ? `rank ${last}` : `ranks ${line.node.rankOffset}-${last}`})`,
          prefix: '', // the node agent prefixes its ranks' lines
          command: line.command,
          args: line.args,
          env: { ...process.env },
          stdin: `${token}\n`, // the agent's first stdin line; the agent stops its ranks when stdin closes
        };
      });
    case 'mpirun':
    case 'slurm': {
      const line = plan.launcher === 'mpirun' ? mpirunCommand(plan, attempt) : srunCommand(plan, attempt);
      return [
        { ...base, name: line.command, prefix: '', command: line.command, args: line.args, env: withToken(line) },
      ];
    }
  }
}

function sshOptions(graceMs: number) {
  return {
    ssh: process.env.ZEROFLOW_SSH || 'ssh',
    cliEntry: join(distDir(), 'bin.cjs'),
    forwarded: forwardedEnv(process.env),
    agentOptions: ['--grace-ms', String(graceMs)],
  };
}

/** The commands a run would start, one shell line each, with the token elided. */
function dryRunLines(plan: LaunchPlan, graceMs: number): string[] {
  const store = `# the launcher hosts the rendezvous store at ${plan.masterAddr}:${plan.masterPort}`;
  const children = childrenOf(plan, 0, '<job token>', graceMs);
  const lines = children.map((c) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(c.env)) {
      if (v !== undefined && process.env[k] !== v) env[k] = v; // only what the launcher adds
    }
    if (c.env.ZEROFLOW_JOB_TOKEN) env.ZEROFLOW_JOB_TOKEN = '<job token>';
    const text = formatCommand({ command: c.command, args: c.args, env });
    return c.stdin !== undefined ? `${text}   # stdin: <job token>` : text;
  });
  return [store, ...lines];
}

/** A node agent (started by `--launcher ssh` on each host): runs this host's ranks of the job. */
async function runNodeAgent(args: RunArgs, script: string, io: CliIO, graceMs: number): Promise<number> {
  const { values } = args;
  const rankOffset = intOption('rank-offset', values['rank-offset'], 0);
  const worldSize = intOption('world-size', values['world-size'], 1);
  const masterPort = intOption('master-port', values['master-port'], 1, 65535);
  if (rankOffset === undefined || worldSize === undefined || masterPort === undefined || !values['master-addr']) {
    throw new UsageError('--node-agent needs --rank-offset, --world-size, --master-addr and --master-port');
  }
  const slots = (values.slots ?? '').split(',').filter(Boolean).map(Number);
  const perNode = intOption('nproc-per-node', values['nproc-per-node'], 1) ?? slots.length;
  const node = { host: 'localhost', slots: slots.length ? slots : [...Array(perNode).keys()], rankOffset };
  const plan: LaunchPlan = {
    launcher: 'local',
    nodes: [node],
    worldSize,
    masterAddr: values['master-addr'],
    masterPort,
    script,
    scriptArgs: args.scriptArgs,
    cwd: process.cwd(),
    nodeExec: process.execPath,
    nodeArgs: nodeArgsFor(script),
    env: {},
  };
  const { token, closed } = await readTokenThenWatch(process.stdin);
  const restartBase = Number(process.env.ZEROFLOW_RESTART_COUNT) || 0;
  try {
    return await runJob({
      maxRestarts: 0, // the launcher restarts every node
      token,
      children: (attempt, jobToken) => childrenOf(plan, restartBase + attempt, jobToken, graceMs),
      abort: closed,
      graceMs,
      stdout: sinkOf(io, 'stdout'),
      stderr: sinkOf(io, 'stderr'),
      log: (message) => io.stderr(`zeroflow run (${hostname()}): ${message}\n`),
    });
  } finally {
    process.stdin.destroy();
  }
}

/** Reads the job token (stdin's first line); the returned signal aborts when stdin closes afterwards. */
function readTokenThenWatch(stdin: NodeJS.ReadStream): Promise<{ token: string; closed: AbortSignal }> {
  const controller = new AbortController();
  return new Promise((resolveToken, reject) => {
    let buffered = '';
    let token: string | undefined;
    stdin.setEncoding('utf8');
    stdin.on('data', (chunk: string) => {
      if (token !== undefined) return;
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl === -1) return;
      token = buffered.slice(0, nl).trim();
      resolveToken({ token, closed: controller.signal });
    });
    const onClose = () => {
      if (token === undefined) reject(new LaunchError('--node-agent: stdin closed before the job token arrived'));
      else controller.abort();
    };
    stdin.on('end', onClose);
    stdin.on('error', onClose);
  });
}

async function run(argv: string[], io: CliIO): Promise<number> {
  const args = parseRunArgs(argv);
  if (args.values.help) {
    io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (!args.script) throw new UsageError('missing <script>');
  const script = args.script;
  const graceMs = intOption('grace-ms', args.values['grace-ms'], 0) ?? DEFAULT_GRACE_MS;
  const maxRestarts = intOption('max-restarts', args.values['max-restarts'], 0, 1000) ?? 0;
  try {
    if (args.values['node-agent']) return await runNodeAgent(args, script, io, graceMs);
    const plan = buildPlan(args, script);
    const bindHost = isLoopbackAddress(plan.masterAddr) ? plan.masterAddr.replace('localhost', '127.0.0.1') : '0.0.0.0';
    if (args.values['dry-run']) {
      if (plan.masterPort === 0) plan.masterPort = await freePort(bindHost);
      io.stdout(`${dryRunLines(plan, graceMs).join('\n')}\n`);
      return EXIT.ok;
    }
    if (plan.launcher === 'local' && !existsSync(resolve(plan.cwd, script))) {
      throw new LaunchError(`script not found: ${script} (in ${plan.cwd})`);
    }
    // On a terminal, rank 0's progress bar is drawn here as one live line (see launcher/progress-line.ts).
    const live = io === processIO && process.stdout.isTTY ? new LiveProgressLine(process.stdout) : null;
    if (live) plan.env[LAUNCHER_TTY_COLUMNS_ENV] = String(process.stdout.columns || 80);
    return await runJob({
      maxRestarts,
      store: { bindHost, port: plan.masterPort },
      children: (attempt, token, port) => childrenOf({ ...plan, masterPort: port }, attempt, token, graceMs),
      graceMs,
      stdout: live ? live.sink(process.stdout) : sinkOf(io, 'stdout'),
      stderr: live ? live.sink(process.stderr) : sinkOf(io, 'stderr'),
      log: (message) =>
        live ? live.print(process.stderr, `zeroflow run: ${message}\n`) : io.stderr(`zeroflow run: ${message}\n`),
    });
  } catch (err) {
    if (err instanceof HostfileError) {
      io.stderr(`zeroflow run: ${err.message}\n`);
      return EXIT.invalidInput;
    }
    throw err;
  }
}

/** The `run` command (the launcher). */
export const runCommand: Command = {
  path: ['run'],
  summary: 'launch a script as N ranks (local processes, ssh, mpirun or slurm)',
  usage: USAGE,
  run,
};
