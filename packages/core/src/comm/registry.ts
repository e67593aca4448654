import { type CommBackend, CommError } from './types.js';

/**
 * The backend registry lives on `globalThis` under a registered symbol so that the ESM and CJS builds of
 * core (which a process may load both of, through different plugins) share one registry.
 */
const REGISTRY_KEY = Symbol.for('zeroflow.comm.backends');

function registry(): Map<string, CommBackend> {
  const g = globalThis as { [REGISTRY_KEY]?: Map<string, CommBackend> };
  g[REGISTRY_KEY] ??= new Map();
  return g[REGISTRY_KEY];
}

/**
 * Makes a collective backend available to `initDistributed` under `backend.name`. Backend packages call it
 * on import (`import '@zeroflow/comm-tcp'`). Registering the same name again replaces the earlier one.
 */
export function registerCommBackend(backend: CommBackend): void {
  if (!backend || typeof backend.name !== 'string' || backend.name === '') {
    throw new CommError('registerCommBackend needs a backend with a non-empty name');
  }
  registry().set(backend.name, backend);
}

/** The backend registered under `name`, or undefined. */
export function getCommBackend(name: string): CommBackend | undefined {
  return registry().get(name);
}

/** Names of the registered backends, in registration order. */
export function listCommBackends(): string[] {
  return [...registry().keys()];
}
