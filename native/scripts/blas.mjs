// Finds OpenBLAS for the zeroflow_kernels addon: a cblas.h whose probe program compiles and links with
// -lopenblas. When none is found and we are root on a Debian-like system with apt-get, it tries
// `apt-get install -y libopenblas-dev` once (non-interactive, with a timeout; recorded in build/status.json
// so later builds do not retry; ZEROFLOW_NO_APT=1 skips it). ZEROFLOW_NO_BLAS=1 builds without OpenBLAS.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PROBE = `#include <cblas.h>
int main() {
  float a = 2, b = 3, c = 0;
  openblas_set_num_threads(1);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 1, 1.0f, &a, 1, &b, 1, 0.0f, &c, 1);
  return c == 6.0f ? 0 : 1;
}
`;
const APT_TIMEOUT_MS = 300_000;

function includeDirs(cxx) {
  const multiarch = spawnSync(cxx, ['-print-multiarch'], { encoding: 'utf8' }).stdout?.trim();
  const dirs = [
    multiarch ? `/usr/include/${multiarch}` : null,
    '/usr/include/x86_64-linux-gnu',
    '/usr/include/aarch64-linux-gnu',
    '/usr/include/openblas',
    '/usr/include',
    '/usr/local/include',
    '/opt/OpenBLAS/include',
  ];
  return [...new Set(dirs.filter((d) => d && existsSync(join(d, 'cblas.h'))))];
}

function probe(cxx) {
  const dir = mkdtempSync(join(tmpdir(), 'zf-blas-'));
  try {
    const src = join(dir, 'probe.cc');
    writeFileSync(src, PROBE);
    for (const include of includeDirs(cxx)) {
      const exe = join(dir, 'probe');
      const built = spawnSync(cxx, [src, `-I${include}`, '-lopenblas', '-o', exe], { encoding: 'utf8' });
      if (built.status === 0 && spawnSync(exe, [], { timeout: 20_000 }).status === 0) return include;
    }
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function aptAlreadyTried(buildDir) {
  try {
    return JSON.parse(readFileSync(join(buildDir, 'status.json'), 'utf8'))?.kernels?.aptTried === true;
  } catch {
    return false;
  }
}

function aptInstall(log) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'libopenblas-dev'], {
      env,
      encoding: 'utf8',
      timeout: APT_TIMEOUT_MS,
    });
  log(
    'OpenBLAS not found: trying `apt-get install -y libopenblas-dev` once (root, non-interactive, 5 min limit; ZEROFLOW_NO_APT=1 skips)',
  );
  let r = install();
  if (r.status !== 0) {
    // A fresh machine may have no package lists yet.
    spawnSync('apt-get', ['update'], { env, encoding: 'utf8', timeout: APT_TIMEOUT_MS });
    r = install();
  }
  log(
    r.status === 0
      ? 'installed libopenblas-dev'
      : 'apt-get could not install libopenblas-dev; using our own GEMM kernel',
  );
  return r.status === 0;
}

/**
 * @returns {{ ok: true, include: string, aptTried: boolean } | { ok: false, reason: string, aptTried: boolean }}
 */
export function detectOpenBlas({ buildDir, cxx, log }) {
  if (process.env.ZEROFLOW_NO_BLAS === '1') return { ok: false, reason: 'ZEROFLOW_NO_BLAS=1', aptTried: false };
  let include = probe(cxx);
  if (include) return { ok: true, include, aptTried: false };
  const canApt =
    process.platform === 'linux' &&
    process.getuid?.() === 0 &&
    process.env.ZEROFLOW_NO_APT !== '1' &&
    spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  const tried = aptAlreadyTried(buildDir);
  if (!canApt || tried) {
    const why = tried ? 'apt-get install was tried before' : 'not root with apt-get, or ZEROFLOW_NO_APT=1';
    return { ok: false, reason: `OpenBLAS (libopenblas-dev) not found; ${why}`, aptTried: tried };
  }
  if (aptInstall(log)) include = probe(cxx);
  return include
    ? { ok: true, include, aptTried: true }
    : { ok: false, reason: 'OpenBLAS not found and apt-get install libopenblas-dev failed', aptTried: true };
}
