/**
 * `zeroflow report [--json]`: the environment a job would run in (DeepSpeed's ds_report): Node and OS, CPU
 * features the native kernels use, memory, the ZeroFlow packages found, TensorFlow.js, the comm backends and
 * native ops with the reason each unavailable one cannot run, and the ZEROFLOW_* variables set.
 *
 * Packages are resolved from the current directory first (the project being run), then from this CLI.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getCommBackend, listCommBackends, tf } from '@zeroflow/core';
import { type CliIO, type Command, EXIT, UsageError } from '../command.js';

const USAGE = `Usage: zeroflow report [--json]

Prints the environment: Node/V8, OS, CPU model, cores and features (avx2, avx512f, avx512_bf16, amx_bf16,
f16c), memory, the ZeroFlow packages found (from the current directory, then from the CLI), the
TensorFlow.js version and backend, the comm backends and native ops with why any is unavailable, and the
ZEROFLOW_* variables set.

Options:
  --json      print one JSON object
  -h, --help  show this help`;

/** CPU flags (as /proc/cpuinfo names them) that decide which native kernels can run. */
export const REPORTED_CPU_FEATURES = ['avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'f16c'] as const;

/** Comm backend packages ZeroFlow knows of, by backend name. */
const COMM_PACKAGES: Record<string, string> = {
  shm: '@zeroflow/comm-shm',
  tcp: '@zeroflow/comm-tcp',
  gloo: '@zeroflow/comm-gloo',
  nccl: '@zeroflow/comm-nccl',
};

/** One comm backend or native op and whether it can run here. */
export interface Availability {
  name: string;
  available: boolean;
  /** Why not, when not available. */
  reason?: string;
  /** What provides it (a package) or extra facts (the SIMD set of a kernel). */
  detail?: string;
}

/** Everything `zeroflow report` prints. */
export interface EnvironmentReport {
  node: { version: string; v8: string; modulesAbi: string };
  os: { platform: string; release: string; arch: string; distro?: string };
  cpu: { model: string; cores: number; features: Record<string, boolean> | null };
  memory: { totalBytes: number; freeBytes: number };
  packages: { name: string; version: string; path: string }[];
  tfjs: { version: string; backend: string; backends: string[] } | null;
  comm: Availability[];
  native: Availability[];
  /** ZEROFLOW_* variables that are set (the job token's value hidden). */
  env: Record<string, string>;
}

/** Requires from the project (current directory) first, then from this CLI; the first that resolves wins. */
function requirers(): NodeJS.Require[] {
  const here = fileURLToPath(import.meta.url);
  return [createRequire(join(process.cwd(), 'noop.js')), createRequire(here)];
}

function tryRequire(name: string): { module: unknown } | { error: string } {
  let error = 'not installed';
  for (const req of requirers()) {
    try {
      req.resolve(name);
    } catch {
      continue;
    }
    try {
      return { module: req(name) };
    } catch (err) {
      error = `failed to load: ${(err as Error).message.split('\n')[0]}`;
    }
  }
  return { error };
}

function cpuInfo(): EnvironmentReport['cpu'] {
  const cpus = os.cpus();
  let model = cpus[0]?.model ?? 'unknown';
  let features: Record<string, boolean> | null = null;
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1] ?? model;
    const flags = new Set((/^flags\s*:\s*(.+)$/m.exec(text)?.[1] ?? '').split(/\s+/));
    features = Object.fromEntries(REPORTED_CPU_FEATURES.map((f) => [f, flags.has(f)]));
  } catch {
    // not Linux: the features stay unknown rather than reported absent
  }
  return { model, cores: os.availableParallelism(), features };
}

function distro(): string | undefined {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Every @zeroflow/* package visible from the project or this CLI, with its version and location. */
function zeroflowPackages(): EnvironmentReport['packages'] {
  const found = new Map<string, { name: string; version: string; path: string }>();
  const add = (dir: string) => {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name?.startsWith('@zeroflow/') && !found.has(pkg.name)) {
        found.set(pkg.name, { name: pkg.name, version: pkg.version ?? '?', path: dir });
      }
    } catch {
      // not a package
    }
  };
  add(join(dirname(fileURLToPath(import.meta.url)), '..')); // this CLI
  for (const req of requirers()) {
    for (const modules of req.resolve.paths('@zeroflow/core') ?? []) {
      const scope = join(modules, '@zeroflow');
      if (!existsSync(scope)) continue;
      for (const entry of readdirSync(scope)) add(join(scope, entry));
    }
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

function tfjsInfo(): EnvironmentReport['tfjs'] {
  try {
    const registry = (tf.engine() as unknown as { registryFactory?: Record<string, unknown> }).registryFactory;
    return { version: tf.version_core, backend: tf.getBackend(), backends: Object.keys(registry ?? {}) };
  } catch {
    return null;
  }
}

/** Loads the known comm packages (they register on import), then asks each registered backend. */
function commBackends(): Availability[] {
  const loadErrors = new Map<string, string>();
  for (const [name, pkg] of Object.entries(COMM_PACKAGES)) {
    const r = tryRequire(pkg);
    if ('error' in r) loadErrors.set(name, `${pkg} ${r.error}`);
  }
  const names = [...new Set([...listCommBackends(), ...Object.keys(COMM_PACKAGES)])];
  return names.map((name) => {
    const backend = getCommBackend(name);
    const pkg = COMM_PACKAGES[name];
    if (!backend)
      return { name, available: false, reason: loadErrors.get(name) ?? `${pkg ?? name} did not register it` };
    try {
      const a = backend.available();
      return a.ok
        ? { name, available: true, detail: pkg }
        : { name, available: false, reason: a.reason ?? 'unavailable', detail: pkg };
    } catch (err) {
      return { name, available: false, reason: `available() threw: ${(err as Error).message}`, detail: pkg };
    }
  });
}

/**
 * The compute kernels addon's build (BLAS, the ISA of each kernel family, threads) and the kernel families it
 * exports, e.g. `blas openblas, gemm avx512, pointwise avx512, fp16/bf16 avx512, bf16 matmul AMX, 2 threads;
 * sgemm, binary, ...`.
 */
function kernelsDetail(addon: Record<string, unknown>, info: Record<string, unknown>): string {
  const families: [string, string][] = [
    ['sgemmBatched', 'sgemm'],
    ['sgemmBatchedBf16', 'bf16 sgemm'],
    ['binary', 'binary'],
    ['unary', 'unary'],
    ['reduce', 'reduce'],
    ['exp', 'exp'],
    ['softmax', 'softmax'],
    ['transpose', 'transpose'],
    ['narrow16', 'fp16/bf16'],
    ['adamStep', 'adam'],
    ['sgdStep', 'sgd'],
  ];
  const present = families.filter(([fn]) => typeof addon[fn] === 'function').map(([, label]) => label);
  const build = [
    `blas ${info.blas}`,
    `gemm ${info.isa}`,
    info.pointwiseIsa ? `pointwise ${info.pointwiseIsa}` : null,
    info.halfIsa ? `fp16/bf16 ${info.halfIsa}` : null,
    info.amxBf16 === undefined ? null : `bf16 matmul ${info.amxBf16 ? 'AMX' : 'unavailable (no AMX)'}`,
    `${info.threads} threads`,
  ].filter(Boolean);
  return `${build.join(', ')}; ${present.join(', ')}`;
}

/** Every addon @zeroflow/native offers: each `loadXAddon()` with its `xAddonUnavailableReason()`. */
function nativeOps(): Availability[] {
  const r = tryRequire('@zeroflow/native');
  if ('error' in r) return [{ name: 'native', available: false, reason: `@zeroflow/native ${r.error}` }];
  const native = r.module as Record<string, unknown>;
  const ops: Availability[] = [];
  for (const [key, load] of Object.entries(native)) {
    const m = /^load(\w+)Addon$/.exec(key);
    if (!m?.[1] || typeof load !== 'function') continue;
    const name = m[1].charAt(0).toLowerCase() + m[1].slice(1);
    const reasonOf = native[`${name}AddonUnavailableReason`];
    try {
      const addon = load() as { isa?: () => string; info?: () => Record<string, unknown> } | null;
      if (addon) {
        ops.push({
          name,
          available: true,
          detail:
            typeof addon.isa === 'function'
              ? `${addon.isa()} kernels`
              : typeof addon.info === 'function'
                ? kernelsDetail(addon as Record<string, unknown>, addon.info())
                : undefined,
        });
      } else {
        const reason = typeof reasonOf === 'function' ? (reasonOf() as string | null) : null;
        ops.push({ name, available: false, reason: reason ?? 'unavailable' });
      }
    } catch (err) {
      ops.push({ name, available: false, reason: (err as Error).message });
    }
  }
  return ops;
}

function zeroflowEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env).sort(([a], [b]) => a.localeCompare(b))) {
    if (!k.startsWith('ZEROFLOW_') || v === undefined) continue;
    env[k] = k === 'ZEROFLOW_JOB_TOKEN' ? '<set, hidden>' : v;
  }
  return env;
}

/** Gathers the report (loads the comm backend packages and native addons it finds). */
export function collectReport(): EnvironmentReport {
  return {
    node: { version: process.version, v8: process.versions.v8, modulesAbi: process.versions.modules },
    os: { platform: process.platform, release: os.release(), arch: process.arch, distro: distro() },
    cpu: cpuInfo(),
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
    packages: zeroflowPackages(),
    tfjs: tfjsInfo(),
    comm: commBackends(),
    native: nativeOps(),
    env: zeroflowEnv(),
  };
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

function availabilityLines(items: Availability[]): string[] {
  const width = Math.max(0, ...items.map((i) => i.name.length));
  return items.map((i) => {
    const status = i.available ? 'available' : `NOT available: ${i.reason}`;
    return `  ${i.name.padEnd(width)}  ${status}${i.detail ? ` (${i.detail})` : ''}`;
  });
}

/** The report as text, one section per block. */
export function formatReport(r: EnvironmentReport): string {
  const features = r.cpu.features
    ? Object.entries(r.cpu.features)
        .map(([f, on]) => `${f} ${on ? 'yes' : 'no'}`)
        .join(', ')
    : 'unknown (no /proc/cpuinfo)';
  const lines = [
    'ZeroFlow environment report',
    '',
    `node          ${r.node.version} (V8 ${r.node.v8}, ABI ${r.node.modulesAbi})`,
    `os            ${r.os.distro ? `${r.os.distro}, ` : ''}${r.os.platform} ${r.os.release} ${r.os.arch}`,
    `cpu           ${r.cpu.model}, ${r.cpu.cores} cores`,
    `cpu features  ${features}`,
    `memory        ${gib(r.memory.totalBytes)} total, ${gib(r.memory.freeBytes)} free`,
    `tfjs          ${r.tfjs ? `${r.tfjs.version}, backend ${r.tfjs.backend} (registered: ${r.tfjs.backends.join(', ')})` : 'not loadable'}`,
    '',
    'packages',
    ...(r.packages.length ? r.packages.map((p) => `  ${p.name} ${p.version}  ${p.path}`) : ['  none found']),
    '',
    'comm backends',
    ...availabilityLines(r.comm),
    '',
    'native ops',
    ...availabilityLines(r.native),
    '',
    'environment',
    ...(Object.keys(r.env).length
      ? Object.entries(r.env).map(([k, v]) => `  ${k}=${v}`)
      : ['  no ZEROFLOW_* variables set']),
  ];
  return `${lines.join('\n')}\n`;
}

function run(args: string[], io: CliIO): number {
  const unknown = args.filter((a) => !['--json', '--help', '-h'].includes(a));
  if (unknown.length) throw new UsageError(`unknown argument "${unknown[0]}"`);
  if (args.includes('--help') || args.includes('-h')) {
    io.stdout(`${USAGE}\n`);
    return EXIT.ok;
  }
  const report = collectReport();
  io.stdout(args.includes('--json') ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return EXIT.ok;
}

/** The `report` command. */
export const reportCommand: Command = {
  path: ['report'],
  summary: 'print the environment: node, CPU features, packages, tfjs, comm backends, native ops',
  usage: USAGE,
  run,
};
