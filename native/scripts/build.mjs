#!/usr/bin/env node
// Builds the zeroflow_shm addon with node-gyp against Node's own headers, offline.
// Never fails the install or the build: when the compiler, the headers or node-gyp are missing (or
// ZEROFLOW_NO_NATIVE=1), it prints one line, records the reason in build/status.json for the loader
// (index.cjs) and exits 0, and ZeroFlow falls back to its pure-TS backends.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(here, 'build');
const addon = join(buildDir, 'Release', 'zeroflow_shm.node');
const statusFile = join(buildDir, 'status.json');
const logFile = join(buildDir, 'build.log');
const force = process.argv.includes('--force');

function finish(ok, reason) {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(statusFile, `${JSON.stringify({ ok, reason: reason ?? null, at: new Date().toISOString() })}\n`);
  console.log(
    ok
      ? `[zeroflow/native] ${reason}`
      : `[zeroflow/native] native addon not built (${reason}); ZeroFlow will use its pure-TS fallbacks`,
  );
  process.exit(0);
}

if (process.env.ZEROFLOW_NO_NATIVE === '1') finish(false, 'ZEROFLOW_NO_NATIVE=1');
if (process.platform !== 'linux') finish(false, `platform ${process.platform} is not supported (Linux only)`);

// Up to date: skip the ~30 s compile when no source changed since the last successful build.
function newestSource() {
  let newest = statSync(join(here, 'binding.gyp')).mtimeMs;
  for (const f of readdirSync(join(here, 'src'))) newest = Math.max(newest, statSync(join(here, 'src', f)).mtimeMs);
  return newest;
}
if (!force && existsSync(addon) && statSync(addon).mtimeMs >= newestSource()) finish(true, 'addon up to date');

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
const r = spawnSync(process.execPath, args, { cwd: here, encoding: 'utf8', env: { ...process.env } });
writeFileSync(logFile, `${r.stdout ?? ''}\n${r.stderr ?? ''}`);
if (r.status !== 0 || !existsSync(addon)) {
  const lines = `${r.stderr ?? ''}\n${r.stdout ?? ''}`.split('\n').filter((l) => /error/i.test(l));
  finish(false, `node-gyp failed: ${(lines[0] ?? 'see log').trim().slice(0, 200)}; full log: ${logFile}`);
}
finish(true, `built ${addon}`);
