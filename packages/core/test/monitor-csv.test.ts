import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CsvMonitor } from '../src/index.js';

describe('CsvMonitor', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'zeroflow-csv-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one CSV per event name under output_path/job_name, as DeepSpeed does', () => {
    const monitor = new CsvMonitor({ enabled: true, output_path: dir, job_name: 'gpt-small' }, { rank: 0 });
    expect(monitor.logDir).toBe(join(dir, 'gpt-small'));
    monitor.writeEvents([
      ['Train/Samples/train_loss', 3.25, 64],
      ['Train/Samples/lr', 0.0003, 64],
    ]);
    monitor.writeEvents([
      ['Train/Samples/train_loss', 3.125, 128],
      ['eval loss', Number.NaN, 128],
    ]);
    monitor.close();
    const jobDir = join(dir, 'gpt-small');
    expect(readdirSync(jobDir).sort()).toEqual([
      'Train_Samples_lr.csv',
      'Train_Samples_train_loss.csv',
      'eval_loss.csv',
    ]);
    expect(readFileSync(join(jobDir, 'Train_Samples_train_loss.csv'), 'utf8')).toBe(
      'step,train_loss\n64,3.25\n128,3.125\n',
    );
    expect(readFileSync(join(jobDir, 'Train_Samples_lr.csv'), 'utf8')).toBe('step,lr\n64,0.0003\n');
    expect(readFileSync(join(jobDir, 'eval_loss.csv'), 'utf8')).toBe('step,eval loss\n128,NaN\n');
    expect(() => monitor.writeEvents([['x', 1, 1]])).toThrow(/after close/);
  });

  it('buffers rows until flush or close, and flushes by itself every flushEvery rows', () => {
    const monitor = new CsvMonitor({ enabled: true, output_path: dir, job_name: 'job' }, { rank: 0, flushEvery: 3 });
    const file = monitor.fileFor('loss');
    monitor.writeEvents([['loss', 1, 1]]);
    expect(existsSync(file)).toBe(false);
    monitor.flush();
    expect(readFileSync(file, 'utf8')).toBe('step,loss\n1,1\n');
    monitor.writeEvents([
      ['loss', 2, 2],
      ['loss', 3, 3],
    ]);
    expect(readFileSync(file, 'utf8')).toBe('step,loss\n1,1\n');
    monitor.writeEvents([['loss', 4, 4]]);
    expect(readFileSync(file, 'utf8')).toBe('step,loss\n1,1\n2,2\n3,3\n4,4\n');
    monitor.close();
  });

  it('appends to existing files without a second header when a run resumes', () => {
    const config = { enabled: true, output_path: dir, job_name: 'resume' };
    const first = new CsvMonitor(config, { rank: 0 });
    first.writeEvents([['Train/Samples/train_loss', 2, 10]]);
    first.close();
    const second = new CsvMonitor(config, { rank: 0 });
    second.writeEvents([['Train/Samples/train_loss', 1.5, 20]]);
    second.close();
    expect(readFileSync(join(dir, 'resume', 'Train_Samples_train_loss.csv'), 'utf8')).toBe(
      'step,train_loss\n10,2\n20,1.5\n',
    );
  });

  it('quotes header fields that need it', () => {
    const monitor = new CsvMonitor({ enabled: true, output_path: dir, job_name: 'q' }, { rank: 0, flushEvery: 1 });
    monitor.writeEvents([['acc, top-5 "strict"', 0.5, 1]]);
    expect(readFileSync(monitor.fileFor('acc, top-5 "strict"'), 'utf8')).toBe('step,"acc, top-5 ""strict"""\n1,0.5\n');
    monitor.close();
  });

  it('writes nothing when disabled or not rank 0', () => {
    for (const [enabled, rank] of [
      [false, 0],
      [true, 1],
    ] as const) {
      const monitor = new CsvMonitor({ enabled, output_path: dir, job_name: 'off' }, { rank });
      expect(monitor.enabled).toBe(false);
      monitor.writeEvents([['loss', 1, 1]]);
      monitor.close();
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});
