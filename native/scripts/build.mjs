#!/usr/bin/env node
// Builds the zeroflow_shm and zeroflow_kernels addons with node-gyp against Node's own headers, offline.
// Never fails the install or the build: when the compiler, the headers or node-gyp are missing (or
// ZEROFLOW_NO_NATIVE=1), it prints one line, records the reason in build/status.json for the loader
// (index.cjs) and exits 0, and ZeroFlow falls back to its pure-TS backends.
// zeroflow_kernels links OpenBLAS when cblas.h and libopenblas are found (see blas.mjs), else it uses its own
// GEMM kernel; if the kernels fail to compile, zeroflow_shm is still built on its own.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { detectOpenBlas } from './blas.mjs';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(here, 'build');
const addon = join(buildDir, 'Release', 'zeroflow_shm.node');
const kernelsAddon = join(buildDir, 'Release', 'zeroflow_kernels.node');
const statusFile = join(buildDir, 'status.json');
const logFile = join(buildDir, 'build.log');
const force = process.argv.includes('--force');

// status.json: `ok`/`reason` describe zeroflow_shm (as before); `kernels` describes zeroflow_kernels.
function finish(ok, reason, kernels = { ok, reason, blas: 'none' }) {
  // Keep the record of the one apt-get try across builds that stop early (no compiler, up to date).
  kernels.aptTried ??= previousStatus()?.kernels?.aptTried ?? false;
  mkdirSync(buildDir, { recursive: true });
  const status = { ok, reason: reason ?? null, kernels, at: new Date().toISOString() };
  writeFileSync(statusFile, `${JSON.stringify(status)}\n`);
  const kernelsNote =
    ok && !kernels.ok ? `; kernels not built (${kernels.reason})` : ok ? ` (BLAS: ${kernels.blas})` : '';
  console.log(
    ok
      ? `[zeroflow/native] ${reason}${kernelsNote}`
      : `[zeroflow/native] native addon not built (${reason}); ZeroFlow will use its pure-TS fallbacks`,
  );
  process.exit(0);
}

if (process.env.ZEROFLOW_NO_NATIVE === '1') finish(false, 'ZEROFLOW_NO_NATIVE=1');
if (process.platform !== 'linux') finish(false, `platform ${process.platform} is not supported (Linux only)`);

// Up to date: skip the ~30 s compile when no source changed since the last successful build.
function newestIn(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestIn(path) : statSync(path).mtimeMs);
  }
  return newest;
}
function newestSource() {
  return Math.max(statSync(join(here, 'binding.gyp')).mtimeMs, newestIn(join(here, 'src')));
}
function previousStatus() {
  try {
    return JSON.parse(readFileSync(statusFile, 'utf8'));
  } catch {
    return null;
  }
}
if (!force && existsSync(addon) && existsSync(kernelsAddon)) {
  const newest = newestSource();
  if (statSync(addon).mtimeMs >= newest && statSync(kernelsAddon).mtimeMs >= newest) {
    const kernels = previousStatus()?.kernels ?? { ok: true, reason: null, blas: 'unknown' };
    finish(true, 'addons up to date', kernels);
  }
}

const cxx = process.env.CXX || 'c++';
if (spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) finish(false, `no C++ compiler (${cxx}) found`);

const require = createRequire(join(here, 'package.json'));
try {
  require.resolve('node-addon-api');
} catch {
  finish(false, 'node-addon-api is not installed (run pnpm install)');
}

// node-gyp: npm's bundled copy (npm is set up for offline builds here), or one on the module path.
const candidates = [
  process.env.npm_config_node_gyp,
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
];
try {
  candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
} catch {}
const nodeGyp = candidates.find((p) => p && existsSync(p));
if (!nodeGyp) finish(false, 'node-gyp not found (it ships with npm)');

// Node's own headers (Debian/Ubuntu's nodejs-dev puts them in /usr/include/node), so nothing is downloaded.
const args = [nodeGyp, 'rebuild', '--release', `--jobs=${process.env.ZEROFLOW_BUILD_JOBS ?? '2'}`];
const prefix = join(dirname(process.execPath), '..');
const nodedir =
  process.env.npm_config_nodedir || (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : '');
if (nodedir) args.push(`--nodedir=${nodedir}`);

mkdirSync(buildDir, { recursive: true });
const logs = [];
function gyp(env) {
  const r = spawnSync(process.execPath, args, { cwd: here, encoding: 'utf8', env: { ...process.env, ...env } });
  logs.push(`### node-gyp with ${JSON.stringify(env)}\n${r.stdout ?? ''}\n${r.stderr ?? ''}`);
  writeFileSync(logFile, logs.join('\n'));
  const firstError = `${r.stderr ?? ''}\n${r.stdout ?? ''}`.split('\n').find((l) => /error/i.test(l));
  return { ok: r.status === 0, error: (firstError ?? 'see log').trim().slice(0, 200) };
}

const blas = detectOpenBlas({ buildDir, cxx, log: (line) => console.log(`[zeroflow/native] ${line}`) });
// 1. both addons (with OpenBLAS when found); 2. both without OpenBLAS; 3. zeroflow_shm alone.
let kernels;
let r = gyp(blas.ok ? { ZEROFLOW_BLAS: 'openblas', ZEROFLOW_BLAS_INCLUDE: blas.include } : { ZEROFLOW_BLAS: 'none' });
if (r.ok && existsSync(kernelsAddon)) {
  kernels = { ok: true, reason: null, blas: blas.ok ? 'openblas' : 'none', blasNote: blas.ok ? null : blas.reason };
} else if (blas.ok && (r = gyp({ ZEROFLOW_BLAS: 'none' })).ok && existsSync(kernelsAddon)) {
  kernels = { ok: true, reason: null, blas: 'none', blasNote: 'linking OpenBLAS failed; see the log' };
} else {
  const kernelsError = r.error;
  r = gyp({ ZEROFLOW_BUILD_KERNELS: '0' });
  kernels = {
    ok: false,
    reason: `node-gyp failed on zeroflow_kernels: ${kernelsError}; full log: ${logFile}`,
    blas: 'none',
  };
}
kernels.aptTried = blas.aptTried;
if (!r.ok || !existsSync(addon)) finish(false, `node-gyp failed: ${r.error}; full log: ${logFile}`, kernels);
finish(true, `built ${addon}${kernels.ok ? ` and ${kernelsAddon}` : ''}`, kernels);
