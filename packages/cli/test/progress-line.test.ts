// Rank 0's progress bar through `zeroflow run` on a real pseudo-terminal (util-linux `script` gives the
// launcher a TTY): the bar is drawn in place by the launcher, other lines scroll above it, no marker leaks.
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(packageDir, 'dist', 'bin.cjs');
const hasScript = spawnSync('script', ['--version']).status === 0;

/** What a terminal shows for `text`: `\r` returns to column 0, ESC[K erases to the end of the line. */
function screen(text: string): string[] {
  return text
    .replaceAll('\r\n', '\n')
    .split('\n')
    .map((line) => {
      let shown = '';
      for (const segment of line.split('\r')) {
        const erased = segment.startsWith('\u001b[K');
        const body = erased ? segment.slice(3) : segment;
        shown = erased ? body : body + shown.slice(body.length);
      }
      return shown.trimEnd();
    })
    .filter((l) => l !== '');
}

describe.skipIf(!hasScript)('progress bar through the launcher', () => {
  it('draws rank 0 bar as the launcher live line, with every other line above it', () => {
    const command = [process.execPath, bin, 'run', '--nproc-per-node', '2', 'test/fixtures/progress.mjs']
      .map((w) => `'${w}'`)
      .join(' ');
    const out = execFileSync('script', ['-qec', `stty cols 200; ${command}`, '/dev/null'], {
      cwd: packageDir,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(out).not.toContain('zeroflow:progress');
    const shown = screen(out);
    expect(shown).toContain('[rank 0] line from rank 0');
    expect(shown).toContain('[rank 1] line from rank 1');
    expect(shown).toContain('[rank 0] rank 0 done');
    // the final state stays as an ordinary line, unprefixed, exactly once; no intermediate state remains
    const bars = shown.filter((l) => l.includes('step '));
    expect(bars).toEqual([expect.stringMatching(/^step 5\/5 \[#{20}\] 100% \| loss 5\.0000 .*mem r0 1\.0M r1 2\.0M$/)]);
  });
});
