// Loader for ZeroFlow's native addons. Never throws: when an addon is missing (no compiler at install
// time, another platform) or disabled (ZEROFLOW_NO_NATIVE=1), loadShmAddon()/loadKernelsAddon() return null
// and shmAddonUnavailableReason()/kernelsAddonUnavailableReason() say why, so callers fall back to pure-TS
// code with a clear message.
'use strict';
const { existsSync, readFileSync } = require('node:fs');
const { join } = require('node:path');

const buildDir = join(__dirname, 'build');
let cached; // undefined: not tried yet; null: unavailable
let reason = null;

function buildStatusReason() {
  try {
    const status = JSON.parse(readFileSync(join(buildDir, 'status.json'), 'utf8'));
    if (status && status.ok === false && status.reason) return `the build skipped it: ${status.reason}`;
  } catch {}
  return 'it was never built (run `node scripts/pnpm.mjs --filter @zeroflow/native build`)';
}

/** The zeroflow_shm addon, or null when it is unavailable (see shmAddonUnavailableReason). */
function loadShmAddon() {
  if (process.env.ZEROFLOW_NO_NATIVE === '1') {
    reason = 'native code is disabled by ZEROFLOW_NO_NATIVE=1';
    return null;
  }
  if (cached !== undefined) return cached;
  const file = join(buildDir, 'Release', 'zeroflow_shm.node');
  if (!existsSync(file)) {
    reason = `the zeroflow_shm native addon is not available: ${buildStatusReason()}`;
    cached = null;
    return null;
  }
  try {
    cached = require(file);
    reason = null;
  } catch (e) {
    reason = `the zeroflow_shm native addon failed to load: ${e?.message ?? String(e)}`;
    cached = null;
  }
  return cached;
}

/** Why loadShmAddon() returned null (null when it loaded). */
function shmAddonUnavailableReason() {
  if (cached === undefined || process.env.ZEROFLOW_NO_NATIVE === '1') loadShmAddon();
  return reason;
}

let kernelsCached; // undefined: not tried yet; null: unavailable
let kernelsReason = null;

function kernelsBuildStatusReason() {
  try {
    const status = JSON.parse(readFileSync(join(buildDir, 'status.json'), 'utf8'));
    if (status?.ok === false && status.reason) return `the build skipped it: ${status.reason}`;
    if (status?.kernels?.ok === false && status.kernels.reason) return `the build skipped it: ${status.kernels.reason}`;
  } catch {}
  return 'it was never built (run `node scripts/pnpm.mjs --filter @zeroflow/native build`)';
}

/** The zeroflow_kernels addon (GEMM and friends), or null when unavailable (see kernelsAddonUnavailableReason). */
function loadKernelsAddon() {
  if (process.env.ZEROFLOW_NO_NATIVE === '1') {
    kernelsReason = 'native code is disabled by ZEROFLOW_NO_NATIVE=1';
    return null;
  }
  if (kernelsCached !== undefined) return kernelsCached;
  const file = join(buildDir, 'Release', 'zeroflow_kernels.node');
  if (!existsSync(file)) {
    kernelsReason = `the zeroflow_kernels native addon is not available: ${kernelsBuildStatusReason()}`;
    kernelsCached = null;
    return null;
  }
  try {
    kernelsCached = require(file);
    kernelsReason = null;
  } catch (e) {
    kernelsReason = `the zeroflow_kernels native addon failed to load: ${e?.message ?? String(e)}`;
    kernelsCached = null;
  }
  return kernelsCached;
}

/** Why loadKernelsAddon() returned null (null when it loaded). */
function kernelsAddonUnavailableReason() {
  if (kernelsCached === undefined || process.env.ZEROFLOW_NO_NATIVE === '1') loadKernelsAddon();
  return kernelsReason;
}

module.exports = { loadShmAddon, shmAddonUnavailableReason, loadKernelsAddon, kernelsAddonUnavailableReason };
