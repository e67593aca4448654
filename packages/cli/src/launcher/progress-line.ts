/**
 * Rank 0's progress bar on the launcher's terminal. A rank's stdout is a pipe to the launcher, so the rank
 * cannot redraw a line in place; when the launcher's stdout is a terminal it tells the ranks so
 * (ZEROFLOW_LAUNCHER_TTY_COLUMNS) and rank 0 sends every redraw as a marked line. This class takes those
 * lines out of the output and keeps the newest as one live line at the bottom of the terminal: every other
 * line (any rank, stdout or stderr, the launcher's own messages) clears it, is printed, and redraws it below.
 */
import { PROGRESS_DONE_MARKER, PROGRESS_LINE_MARKER } from '@zeroflow/core';
import type { OutputSink } from './line-prefixer.js';

/** The part of a terminal stream this class writes to. */
export interface TerminalStream extends OutputSink {
  write(text: string): boolean;
}

/** One live progress line shared by the launcher's stdout and stderr (one terminal). */
export class LiveProgressLine {
  private live = '';
  private visible = false;

  /** `terminal` is where the live line is drawn (the launcher's stdout). */
  constructor(private readonly terminal: TerminalStream) {}

  /**
   * A sink for `stream` (the launcher's stdout or stderr, both on this terminal). Prefixed rank output
   * arrives in complete lines; marked lines update the live line, the rest is printed above it.
   */
  sink(stream: TerminalStream): OutputSink {
    return {
      write: (text) => this.write(stream, text),
      once: stream.once?.bind(stream),
    };
  }

  /** Prints a message of the launcher's own above the live line. */
  print(stream: TerminalStream, text: string): void {
    this.write(stream, text);
  }

  private write(stream: TerminalStream, text: string): boolean {
    let plain = '';
    let changed = false;
    for (const line of text.split(/(?<=\n)/)) {
      const at = line.indexOf(PROGRESS_LINE_MARKER);
      const doneAt = line.indexOf(PROGRESS_DONE_MARKER);
      if (at !== -1) {
        this.live = line.slice(at + PROGRESS_LINE_MARKER.length).replace(/\n$/, '');
        changed = true;
      } else if (doneAt !== -1) {
        // the final state stays on the screen as an ordinary line
        plain += `${line.slice(doneAt + PROGRESS_DONE_MARKER.length).replace(/\n$/, '')}\n`;
        this.live = '';
      } else plain += line;
    }
    let ok = true;
    if (plain !== '') {
      this.clear();
      ok = stream.write(plain);
      changed = true;
    }
    if (changed && this.live !== '') ok = this.draw() && ok;
    return ok;
  }

  private clear(): void {
    if (!this.visible) return;
    // `\r` + erase to the end of the line: the next text starts at column 0 of a blank line
    this.terminal.write('\r\u001b[K');
    this.visible = false;
  }

  private draw(): boolean {
    this.visible = true;
    return this.terminal.write(`\r\u001b[K${this.live}`);
  }
}
