/**
 * Goal: the logs an operator reads are structured and complete. JSON lines
 * carry level (a label), an ISO time, the component, the logger's base
 * fields and the call's fields; levels below the minimum are dropped; an
 * Error anywhere in the fields keeps its message and stack; the pretty
 * format renders the same records for a terminal; and a line written just
 * before the process exits is not lost.
 */
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, isLogFormat, isLogLevel, LOG_LEVELS, withFields, type LoggerOptions } from '../../lib/logger.js';

/** A destination that keeps every line written to it. */
function capture(): { readonly stream: Writable; readonly lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, lines: () => text.split('\n').filter((l) => l !== '') };
}

function jsonLogger(opts: Omit<LoggerOptions, 'destination'>): { log: ReturnType<typeof createLogger>; records: () => Record<string, unknown>[] } {
  const out = capture();
  return { log: createLogger({ ...opts, destination: out.stream }), records: () => out.lines().map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('createLogger (JSON)', () => {
  it('writes one JSON object per line with level, time, component, base fields and the call fields', () => {
    const { log, records } = jsonLogger({ component: 'coordinator', fields: { node: 'c1' } });
    log('info', 'committed', { txId: 't1', participants: 2 });
    const [r] = records();
    expect(r).toMatchObject({ level: 'info', component: 'coordinator', node: 'c1', txId: 't1', participants: 2, msg: 'committed', pid: process.pid });
    expect(new Date(r?.['time'] as string).toISOString()).toBe(r?.['time']);
  });

  it('drops levels below the minimum (info by default)', () => {
    const quiet = jsonLogger({ component: 'store' });
    quiet.log('debug', 'hidden');
    quiet.log('warn', 'shown');
    expect(quiet.records().map((r) => [r['level'], r['msg']])).toEqual([['warn', 'shown']]);
    const loud = jsonLogger({ component: 'store', level: 'debug' });
    loud.log('debug', 'shown too');
    expect(loud.records().map((r) => r['level'])).toEqual(['debug']);
    const errorsOnly = jsonLogger({ component: 'store', level: 'error' });
    for (const level of LOG_LEVELS) errorsOnly.log(level, level);
    expect(errorsOnly.records().map((r) => r['msg'])).toEqual(['error']);
  });

  it('keeps the message and stack of an Error at any depth, with its cause and own fields', () => {
    const { log, records } = jsonLogger({ component: 'participant', fields: { participant: 'bank-a' } });
    const root = new Error('disk full');
    const e = Object.assign(new TypeError('log write failed', { cause: root }), { code: 'log_write' });
    log('error', 'the participant failed', { error: e, attempts: [{ error: new RangeError('first') }] });
    const [r] = records();
    const error = r?.['error'] as Record<string, unknown>;
    expect(error).toMatchObject({ type: 'TypeError', code: 'log_write' });
    expect(error['message']).toContain('log write failed');
    expect(error['stack']).toContain('TypeError: log write failed');
    expect(error['stack']).toContain('disk full'); // the cause's stack comes along
    expect(error['stack']).toMatch(/logger\.test\.ts/);
    const nested = (r?.['attempts'] as Record<string, Record<string, unknown>>[])[0]?.['error'];
    expect(nested).toMatchObject({ type: 'RangeError', message: 'first' });
    expect(nested?.['stack']).toContain('RangeError: first');
  });

  it('leaves the caller’s fields object untouched', () => {
    const { log } = jsonLogger({ component: 'x' });
    const e = new Error('boom');
    const fields = { error: e, inner: { e } };
    log('warn', 'w', fields);
    expect(fields.error).toBe(e);
    expect(fields.inner.e).toBe(e);
  });

  it('withFields adds fields to every line of an existing logger; the call’s own fields win', () => {
    const { log, records } = jsonLogger({ component: 'bank' });
    const child = withFields(log, { participant: 'bank-a', txId: 'none' });
    child('info', 'one');
    child('info', 'two', { txId: 't2' });
    expect(records().map((r) => [r['participant'], r['txId']])).toEqual([['bank-a', 'none'], ['bank-a', 't2']]);
  });

  it('validates level and format names, as flag parsing needs', () => {
    expect(LOG_LEVELS).toEqual(['debug', 'info', 'warn', 'error']);
    expect(isLogLevel('warn')).toBe(true);
    expect(isLogLevel('nope')).toBe(false);
    expect(isLogLevel(undefined)).toBe(false);
    expect(isLogFormat('pretty')).toBe(true);
    expect(isLogFormat('text')).toBe(false);
  });
});

describe('createLogger (pretty)', () => {
  it('renders level, component, message and fields as text, not JSON', () => {
    const out = capture();
    const log = createLogger({ component: 'bank', format: 'pretty', fields: { participant: 'bank-a' }, destination: out.stream });
    log('debug', 'hidden');
    log('warn', 'store write failed; retrying', { txId: 't9', error: new Error('unreachable') });
    const text = out.lines().join('\n');
    expect(text).not.toContain('hidden');
    expect(text).toMatch(/WARN.*bank: store write failed; retrying/);
    expect(text).toContain('participant: "bank-a"');
    expect(text).toContain('txId: "t9"');
    expect(text).toContain('Error: unreachable');
    expect(() => JSON.parse(out.lines()[0] ?? '')).toThrow();
  });
});

describe('on stderr', () => {
  it('a line logged just before process.exit reaches stderr (synchronous writes), in both formats', () => {
    const script = (format: string): string =>
      `import { createLogger } from ${JSON.stringify(new URL('../../lib/logger.ts', import.meta.url).pathname)};` +
      `createLogger({ component: 'crashy', format: '${format}' })('error', 'last words', { txId: 't1', error: new Error('fatal') }); process.exit(3);`;
    for (const format of ['json', 'pretty']) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(format)], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stderr).toBe(3);
      expect(r.stderr).toContain('last words');
      expect(r.stderr).toContain('Error: fatal');
      if (format === 'json') expect(JSON.parse(r.stderr.trim())).toMatchObject({ level: 'error', component: 'crashy', txId: 't1' });
    }
  });

  it('stderrLogger still works, as a JSON logger named by its component', () => {
    const script =
      `import { stderrLogger } from ${JSON.stringify(new URL('../../lib/logger.ts', import.meta.url).pathname)};` +
      `const log = stderrLogger('app', 'warn'); log('info', 'quiet'); log('warn', 'loud', { n: 1 });`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 'warn', component: 'app', msg: 'loud', n: 1 });
  });
});
