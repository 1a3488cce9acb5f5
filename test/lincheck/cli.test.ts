import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_ILLEGAL, EXIT_OK, EXIT_UNKNOWN, EXIT_USAGE, main, type CliIo } from './cli.js';
import { get, history, set } from './fixtures.js';

const good = history(set(1, 'x', 'a', 0, 10), get(2, 'x', 'a', 20, 30), get(2, 'y', null, 0, 1));
const bad = history(set(1, 'x', 'a', 0, 10), get(2, 'x', null, 20, 30), get(2, 'y', null, 0, 1));

function run(args: string[], files: Record<string, string>): { code: number; out: string; err: string } {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    readFile: (p) => {
      const text = files[p];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file '${p}'`), { code: 'ENOENT' });
      return text;
    },
  };
  const code = main(args, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('cli main()', () => {
  it('prints each key and exits 0 for a linearizable history', () => {
    const r = run(['h.json'], { 'h.json': JSON.stringify(good) });
    expect(r.code).toBe(EXIT_OK);
    expect(r.out).toMatch(/^"x"\s+ok\s+2 ops/m);
    expect(r.out).toMatch(/^"y"\s+ok\s+1 ops/m);
    expect(r.out).toContain('result: ok');
  });

  it('exits 1 and prints the counterexample for an illegal history', () => {
    const r = run(['h.json'], { 'h.json': JSON.stringify(bad) });
    expect(r.code).toBe(EXIT_ILLEGAL);
    expect(r.out).toMatch(/^"x"\s+illegal/m);
    expect(r.out).toMatch(/^"y"\s+ok/m);
    expect(r.out).toContain('#1 client 2: get("x") -> null');
    expect(r.out).toContain('result: illegal');
  });

  it('prints the full result as JSON with --json', () => {
    const r = run(['--json', 'h.json'], { 'h.json': JSON.stringify(bad) });
    expect(r.code).toBe(EXIT_ILLEGAL);
    const parsed = JSON.parse(r.out) as { result: string; counterexample: { key: string } };
    expect(parsed.result).toBe('illegal');
    expect(parsed.counterexample.key).toBe('x');
  });

  it('exits 3 when the budget runs out', () => {
    const hard = history(
      ...Array.from({ length: 16 }, (_, i) => set(i, 'x', `w${i}`, 0, 100)),
      get(99, 'x', 'never', 200, 210),
    );
    const r = run(['h.json', '--max-steps', '1000'], { 'h.json': JSON.stringify(hard) });
    expect(r.code).toBe(EXIT_UNKNOWN);
    expect(r.out).toContain('limit maxSteps exceeded');
  });

  it('exits 2 on bad usage, missing files and malformed histories', () => {
    expect(run([], {}).code).toBe(EXIT_USAGE);
    expect(run(['--bogus', 'h.json'], {}).code).toBe(EXIT_USAGE);
    expect(run(['h.json', '--timeout-ms', 'soon'], {}).code).toBe(EXIT_USAGE);
    const missing = run(['nope.json'], {});
    expect(missing.code).toBe(EXIT_USAGE);
    expect(missing.err).toContain('nope.json');
    const malformed = run(['h.json'], { 'h.json': '{"version":1,"clock":"monotonic-ms","operations":[{}]}' });
    expect(malformed.code).toBe(EXIT_USAGE);
    expect(malformed.err).toContain('operations[0].id');
  });
});

describe('cli as a process', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lincheck-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs under tsx and sets the exit code', () => {
    const goodFile = join(dir, 'good.json');
    const badFile = join(dir, 'bad.json');
    writeFileSync(goodFile, JSON.stringify(good));
    writeFileSync(badFile, JSON.stringify(bad));
    const tsx = join(process.cwd(), 'node_modules', '.bin', 'tsx');
    const out = execFileSync(tsx, ['test/lincheck/cli.ts', goodFile], { encoding: 'utf8' });
    expect(out).toContain('result: ok');
    let status: number | null = null;
    try {
      execFileSync(tsx, ['test/lincheck/cli.ts', badFile], { encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      status = (e as { status: number | null }).status;
    }
    expect(status).toBe(EXIT_ILLEGAL);
  });
});
