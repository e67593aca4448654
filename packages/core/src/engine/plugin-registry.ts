import { PluginError } from '../errors.js';
import type { Capability, ZeroFlowPlugin } from '../plugin.js';
import { CORE_VERSION } from '../version.js';
import { importFromApp } from './resolve-package.js';

/** Parses `x.y.z` (ignores pre-release tags). */
function parseVersion(v: string): [number, number, number] | null {
  const m = /^\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v);
  return m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : null;
}

function cmp(a: [number, number, number], b: [number, number, number]): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * Whether `version` satisfies `range`: `*`, exact `x.y.z`, `^x.y.z`, `~x.y.z`, `>=x.y.z`, `<x.y.z`, and
 * space-separated conjunctions or `||` alternatives of these (the subset plugins use).
 */
export function satisfies(version: string, range: string): boolean {
  const v = parseVersion(version);
  if (!v) return false;
  return range.split('||').some((alt) =>
    alt
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .every((term) => {
        if (term === '*' || term === 'x') return true;
        const op = /^(\^|~|>=|<=|>|<|=)?(.*)$/.exec(term)!;
        const r = parseVersion(op[2]);
        if (!r) return false;
        const c = cmp(v, r);
        switch (op[1]) {
          case '^':
            if (c < 0) return false;
            if (r[0] > 0) return v[0] === r[0];
            if (r[1] > 0) return v[0] === 0 && v[1] === r[1];
            return v[0] === 0 && v[1] === 0 && v[2] === r[2];
          case '~':
            return c >= 0 && v[0] === r[0] && v[1] === r[1];
          case '>=':
            return c >= 0;
          case '<=':
            return c <= 0;
          case '>':
            return c > 0;
          case '<':
            return c < 0;
          default:
            return c === 0;
        }
      }),
  );
}

/**
 * Checks a set of plugins and returns them in setup order: `enforce: 'pre'` first, then normal, then
 * `post`, each plugin after its dependencies. Throws a PluginError listing every problem: duplicate names,
 * incompatible core versions, missing dependencies, dependency cycles, unmet `requires`, and a number of
 * `optimizer-step` owners other than one (or more than one `parameter-storage` provider).
 */
export function orderAndValidatePlugins(plugins: ZeroFlowPlugin[], coreVersion = CORE_VERSION): ZeroFlowPlugin[] {
  const problems: string[] = [];
  const byName = new Map<string, ZeroFlowPlugin>();
  for (const p of plugins) {
    if (!p || typeof p.name !== 'string' || !p.name) {
      problems.push('a plugin without a name was given (every plugin needs `name`, `version`, `coreVersion`)');
      continue;
    }
    if (byName.has(p.name)) problems.push(`plugin "${p.name}" is registered twice`);
    byName.set(p.name, p);
    if (!satisfies(coreVersion, p.coreVersion ?? '')) {
      problems.push(`plugin "${p.name}" needs @zeroflow/core ${p.coreVersion}, this is ${coreVersion}`);
    }
    for (const d of p.dependencies ?? []) {
      if (!plugins.some((q) => q.name === d))
        problems.push(`plugin "${p.name}" depends on "${d}", which is not registered`);
    }
  }
  const providers = new Map<Capability, string[]>();
  for (const p of byName.values())
    for (const c of p.provides ?? []) providers.set(c, [...(providers.get(c) ?? []), p.name]);
  for (const p of byName.values()) {
    for (const need of p.requires ?? []) {
      if (!providers.has(need))
        problems.push(`plugin "${p.name}" requires capability "${need}", which no registered plugin provides`);
    }
  }
  const owners = providers.get('optimizer-step') ?? [];
  if (owners.length !== 1) {
    problems.push(
      owners.length === 0
        ? 'no plugin owns gradient reduction and the optimizer step (capability "optimizer-step")'
        : `exactly one plugin may own the optimizer step, but ${owners.map((o) => `"${o}"`).join(' and ')} both do`,
    );
  }
  // A provider that yields parameter storage (amp) gives it up to one that does not (ZeRO-3).
  const allStorage = providers.get('parameter-storage') ?? [];
  const firm = allStorage.filter((n) => !byName.get(n)?.yields?.includes('parameter-storage'));
  const storage = firm.length > 0 ? firm : allStorage;
  if (storage.length > 1)
    problems.push(`plugins ${storage.map((o) => `"${o}"`).join(' and ')} both provide parameter storage`);
  const sections = new Map<string, string>();
  for (const p of byName.values()) {
    const key = p.configSection?.key;
    if (!key) continue;
    const other = sections.get(key);
    if (other) problems.push(`plugins "${other}" and "${p.name}" both claim the config section "${key}"`);
    sections.set(key, p.name);
  }
  if (problems.length)
    throw new PluginError(`Cannot initialize plugins:\n${problems.map((s) => `  - ${s}`).join('\n')}`);

  const rank = (p: ZeroFlowPlugin) => (p.enforce === 'pre' ? 0 : p.enforce === 'post' ? 2 : 1);
  const sorted = [...byName.values()].sort((a, b) => rank(a) - rank(b));
  const out: ZeroFlowPlugin[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (p: ZeroFlowPlugin, chain: string[]) => {
    const s = state.get(p.name);
    if (s === 'done') return;
    if (s === 'visiting') throw new PluginError(`plugin dependency cycle: ${[...chain, p.name].join(' -> ')}`);
    state.set(p.name, 'visiting');
    for (const d of p.dependencies ?? []) visit(byName.get(d)!, [...chain, p.name]);
    state.set(p.name, 'done');
    out.push(p);
  };
  for (const p of sorted) visit(p, []);
  return out;
}

/** How a plugin package exposes its plugin: a default export, `plugin`, or `createPlugin()`. */
type PluginModule = { default?: unknown; plugin?: unknown; createPlugin?: () => unknown };

/** Imports the plugin a config needs from its package; a missing package is a PluginError saying what to install. */
export async function loadPluginPackage(pkg: string, reason: string): Promise<ZeroFlowPlugin> {
  let mod: PluginModule;
  try {
    mod = (await importFromApp(pkg)) as PluginModule;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new PluginError(
        `${reason} needs the package ${pkg}, which is not installed: run \`pnpm add ${pkg}\` (or npm install ${pkg})`,
      );
    }
    throw new PluginError(`loading ${pkg} (needed because ${reason}) failed: ${(e as Error).message}`);
  }
  const candidate = mod.createPlugin ? mod.createPlugin() : (mod.plugin ?? mod.default);
  const plugin = candidate as ZeroFlowPlugin | undefined;
  if (!plugin || typeof plugin.name !== 'string') {
    throw new PluginError(
      `${pkg} does not export a ZeroFlow plugin (expected \`plugin\`, \`createPlugin\` or a default export)`,
    );
  }
  return plugin;
}

/**
 * The comm plugin of a multi-rank job when none was given: `ZEROFLOW_COMM` (`shm`, `tcp`, ...) names the
 * package `@zeroflow/comm-<name>`; otherwise `@zeroflow/comm-shm` when every rank is on this host and its
 * native part can run here, else `@zeroflow/comm-tcp`.
 */
export async function loadCommPlugin(world: { worldSize: number; localWorldSize: number }): Promise<ZeroFlowPlugin> {
  const asked = process.env.ZEROFLOW_COMM;
  if (asked) return loadPluginPackage(`@zeroflow/comm-${asked}`, `ZEROFLOW_COMM=${asked}`);
  const reason = `a job of ${world.worldSize} ranks`;
  if (world.localWorldSize === world.worldSize) {
    try {
      const shm = await loadPluginPackage('@zeroflow/comm-shm', reason);
      const { getCommBackend } = await import('../comm/registry.js');
      if (getCommBackend('shm')?.available().ok) return shm;
    } catch (e) {
      if (!(e instanceof PluginError)) throw e;
    }
  }
  return loadPluginPackage('@zeroflow/comm-tcp', reason);
}

/**
 * Activates `@zeroflow/backend-native` (native kernels as the tfjs backend `zeroflow-cpu`) when the
 * application has it installed, unless ZEROFLOW_NO_NATIVE=1. The package reports once, itself, when its
 * addon could not be built; without the package, tfjs's cpu backend is used.
 */
export async function loadNativeBackend(): Promise<boolean> {
  if (process.env.ZEROFLOW_NO_NATIVE === '1') return false;
  try {
    await importFromApp('@zeroflow/backend-native');
    return true;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return false;
    throw e;
  }
}
