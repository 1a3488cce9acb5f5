// Goal: the token file and the checks of lib/token-auth.ts, in process with
// an injected clock, file system and reload triggers: the file is
// validated (schema, duplicates, dates, limits); a token is found by its
// hash and nothing else; expiry follows the injected clock; each refusal has
// its status, code and WWW-Authenticate challenge; roles map to policies as
// documented; a route's policy is found as the router finds the route, and
// a route without one needs admin; a reload with a bad file keeps the old
// table; the call token reloads the same way. Also a micro-benchmark of the
// per-request check (printed, not asserted).
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { ReloadTriggers } from '../../lib/file-reload.js';
import { Router } from '../../lib/http.js';
import { appendEntry } from '../../lib/token-cli.js';
import {
  authorize,
  CallToken,
  hashToken,
  newToken,
  parseTokenFile,
  refusalReply,
  rolesAllow,
  routePolicyLookup,
  routesWithoutPolicy,
  TOKEN_LIMITS,
  TOKEN_PREFIX,
  TokenAuth,
  TokenTable,
  type TokenFs,
} from '../../lib/token-auth.js';

const CLIENT = newToken();
const ADMIN = newToken();
const COORD = newToken();
const OLD = newToken();

function fileOf(entries: unknown[]): string {
  return JSON.stringify({ tokens: entries });
}

const ENTRIES = [
  { name: 'app', roles: ['client'], sha256: hashToken(CLIENT) },
  { name: 'ops', roles: ['admin'], sha256: hashToken(ADMIN) },
  { name: 'c1', roles: ['coordinator'], sha256: hashToken(COORD) },
  { name: 'old', roles: ['client'], sha256: hashToken(OLD), expiresAt: '2023-11-14T22:13:21Z' },
];

function refusal(f: () => unknown): { status: number; code: string } {
  try {
    f();
  } catch (e) {
    if (e instanceof AppError) return { status: e.status, code: e.code };
    throw e;
  }
  throw new Error('not refused');
}

/** A file system of strings, and reload triggers fired by hand. */
class FakeFiles implements TokenFs {
  readonly files = new Map<string, string>();
  readText(file: string, maxBytes: number): string {
    const t = this.files.get(file);
    if (t === undefined) throw new Error(`ENOENT: ${file}`);
    if (Buffer.byteLength(t) > maxBytes) throw new Error(`${file} too large`);
    return t;
  }
}

class ManualTriggers implements ReloadTriggers {
  readonly watchers = new Map<string, () => void>();
  hangups: (() => void)[] = [];
  watch(file: string, _intervalMs: number, onChange: () => void): () => void {
    this.watchers.set(file, onChange);
    return () => this.watchers.delete(file);
  }
  onHangup(fn: () => void): () => void {
    this.hangups.push(fn);
    return () => (this.hangups = this.hangups.filter((f) => f !== fn));
  }
  hup(): void {
    for (const f of this.hangups) f();
  }
}

describe('the token file', () => {
  it('takes valid entries and finds tokens by their hash only', () => {
    const table = parseTokenFile(fileOf(ENTRIES));
    expect(table.size).toBe(4);
    expect(table.lookup(CLIENT)?.name).toBe('app');
    expect(table.lookup(hashToken(CLIENT))).toBeUndefined(); // the file's hash is no token
    expect(table.lookup(`${CLIENT}x`)).toBeUndefined();
    expect(table.lookup('')).toBeUndefined();
    expect(CLIENT.startsWith(TOKEN_PREFIX)).toBe(true);
    expect(CLIENT).toMatch(/^r2pt_[A-Za-z0-9_-]{43}$/);
  });

  it('refuses what is not a token file, naming the problem', () => {
    const bad: [string, RegExp][] = [
      ['{', /not JSON/],
      ['[]', /must be object/],
      [JSON.stringify({ tokens: [], extra: 1 }), /unknown field extra/],
      [fileOf([{ name: 'a', roles: ['client'] }]), /sha256/],
      [fileOf([{ name: 'a', roles: ['root'], sha256: hashToken('x') }]), /roles/],
      [fileOf([{ name: 'a', roles: [], sha256: hashToken('x') }]), /roles/],
      [fileOf([{ name: 'a', roles: ['client'], sha256: 'ABC' }]), /sha256/],
      [fileOf([{ name: 'a', roles: ['client'], sha256: hashToken('x'), expiresAt: 'tomorrow' }]), /expiresAt/],
      [fileOf([{ name: 'a', roles: ['client'], sha256: hashToken('x'), expiresAt: '2026-13-45T99:99:99Z' }]), /not a date/],
      [fileOf([ENTRIES[0], { ...ENTRIES[1], sha256: ENTRIES[0]?.sha256 }]), /listed twice/],
      [fileOf([{ name: '', roles: ['client'], sha256: hashToken('x') }]), /name/],
    ];
    for (const [text, why] of bad) {
      let err: unknown;
      try {
        parseTokenFile(text);
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('invalid_token_file');
      expect((err as AppError).message, text).toMatch(why);
    }
  });

  it('keeps its limits: entries, file bytes, token length', () => {
    const many = Array.from({ length: TOKEN_LIMITS.maxEntries + 1 }, (_, i) => ({ name: `t${i}`, roles: ['client'], sha256: hashToken(String(i)) }));
    expect(() => parseTokenFile(fileOf(many))).toThrow(/must NOT have more than/);
    expect(() => parseTokenFile(' '.repeat(TOKEN_LIMITS.maxFileBytes + 1))).toThrow(/exceeds/);
    const long = 'x'.repeat(TOKEN_LIMITS.maxTokenChars + 1);
    const table = new TokenTable([{ name: 'long', roles: ['client'], sha256: hashToken(long) }]);
    expect(refusal(() => authorize(table, 'client', `Bearer ${long}`, 0))).toEqual({ status: 401, code: 'invalid_token' });
    expect(() => appendEntry(Array.from({ length: TOKEN_LIMITS.maxEntries }, () => ENTRIES[0] as never), ENTRIES[1] as never)).toThrow(/the most/);
  });
});

describe('checks', () => {
  const table = parseTokenFile(fileOf(ENTRIES));
  const clock = new ManualClock(Date.parse('2023-11-14T22:13:00Z'));

  it('answers each refusal with its status and code, and 401s with a Bearer challenge', () => {
    const cases: [string | undefined, 'client' | 'admin' | 'coordinator', number, string][] = [
      [undefined, 'client', 401, 'unauthenticated'],
      ['Basic abc', 'client', 401, 'unauthenticated'],
      ['Bearer', 'client', 401, 'unauthenticated'],
      [`Bearer ${newToken()}`, 'client', 401, 'invalid_token'],
      [`Bearer ${CLIENT}`, 'admin', 403, 'forbidden'],
      [`Bearer ${CLIENT}`, 'coordinator', 403, 'forbidden'],
      [`Bearer ${ADMIN}`, 'coordinator', 403, 'forbidden'],
      [`Bearer ${COORD}`, 'client', 403, 'forbidden'],
    ];
    for (const [header, policy, status, code] of cases) {
      let err: AppError | undefined;
      try {
        authorize(table, policy, header, clock.nowMs());
      } catch (e) {
        err = e as AppError;
      }
      expect({ header, policy, status: err?.status, code: err?.code }).toEqual({ header, policy, status, code });
      const reply = refusalReply(err as AppError);
      expect(reply.status).toBe(status);
      if (status === 401) expect(reply.headers?.['www-authenticate']).toMatch(/^Bearer realm="raft2pc"/);
      else expect(reply.headers).toBeUndefined();
    }
    expect(authorize(table, 'client', `Bearer ${CLIENT}`, clock.nowMs())?.name).toBe('app');
    expect(authorize(table, 'client', `bearer  ${ADMIN}`, clock.nowMs())?.name).toBe('ops');
    expect(authorize(table, 'public', undefined, clock.nowMs())).toBeUndefined();
  });

  it('expires a token at its expiresAt on the injected clock', () => {
    const c = new ManualClock(Date.parse('2023-11-14T22:13:20Z'));
    expect(authorize(table, 'client', `Bearer ${OLD}`, c.nowMs())?.name).toBe('old');
    c.advance(1_000); // exactly expiresAt
    expect(refusal(() => authorize(table, 'client', `Bearer ${OLD}`, c.nowMs()))).toEqual({ status: 401, code: 'token_expired' });
  });

  it('maps roles to policies: admin passes client routes, only a coordinator passes coordinator routes', () => {
    const r = (...roles: ('client' | 'admin' | 'coordinator')[]) => new Set(roles);
    expect(rolesAllow(r('admin'), 'client')).toBe(true);
    expect(rolesAllow(r('admin'), 'admin')).toBe(true);
    expect(rolesAllow(r('admin'), 'coordinator')).toBe(false);
    expect(rolesAllow(r('client'), 'admin')).toBe(false);
    expect(rolesAllow(r('coordinator'), 'coordinator')).toBe(true);
    expect(rolesAllow(r(), 'public')).toBe(true);
  });

  it('finds the policy of a path as the router finds its route; a route without one needs admin', () => {
    const router = new Router();
    const noop = () => ({ status: 200, body: {} });
    router.on('GET', '/v1/transactions', noop).on('GET', '/v1/transactions/:id', noop).on('POST', '/v1/transactions/:id/commit', noop).on('GET', '/files/*rest', noop).on('GET', '/new', noop);
    const policies = { 'GET /v1/transactions': 'admin', 'GET /v1/transactions/:id': 'client', 'POST /v1/transactions/:id/commit': 'client', 'GET /files/*rest': 'public' } as const;
    const of = routePolicyLookup(router, policies);
    expect(of('GET', '/v1/transactions')).toBe('admin');
    expect(of('GET', '/v1/transactions/t1')).toBe('client');
    expect(of('HEAD', '/v1/transactions/t1')).toBe('client');
    expect(of('GET', '/v1/%74ransactions/t1')).toBe('client'); // percent-encoded as the router decodes it
    expect(of('POST', '/v1/transactions/t1/commit')).toBe('client');
    expect(of('GET', '/files/a/b/c')).toBe('public');
    expect(of('GET', '/new')).toBe('admin');
    expect(of('GET', '/nothing')).toBe('admin');
    expect(of('GET', '/v1/%zz')).toBe('admin');
    expect(routesWithoutPolicy(router, policies)).toEqual(['GET /new']);
  });

  it('takes the same path through the table for a known and an unknown token (constant-time compare of the digests)', () => {
    // Lookup hashes what was presented and compares digests with timingSafeEqual:
    // the time of a miss does not depend on how much of a real token was guessed.
    const near = `${CLIENT.slice(0, -1)}${CLIENT.endsWith('A') ? 'B' : 'A'}`;
    expect(table.lookup(near)).toBeUndefined();
    expect(table.lookup(CLIENT)).toBeDefined();
  });
});

describe('the live table', () => {
  it('reloads on SIGHUP and file change, keeping the old table when the new file is bad', () => {
    const fs = new FakeFiles();
    const triggers = new ManualTriggers();
    const logged: string[] = [];
    const clock = new ManualClock(Date.parse('2023-01-01T00:00:00Z'));
    fs.files.set('/t.json', fileOf([ENTRIES[0]]));
    const auth = TokenAuth.open('/t.json', { fs, clock, triggers, log: (level, msg) => logged.push(`${level} ${msg}`) });
    const stop = auth.watch();
    expect(auth.check('client', `Bearer ${CLIENT}`)?.name).toBe('app');
    expect(refusal(() => auth.check('admin', `Bearer ${ADMIN}`))).toEqual({ status: 401, code: 'invalid_token' });

    fs.files.set('/t.json', fileOf([ENTRIES[1]]));
    triggers.hup();
    expect(auth.check('admin', `Bearer ${ADMIN}`)?.name).toBe('ops');
    expect(refusal(() => auth.check('client', `Bearer ${CLIENT}`))).toEqual({ status: 401, code: 'invalid_token' });

    fs.files.set('/t.json', '{"tokens": [ half a file');
    triggers.watchers.get('/t.json')?.();
    expect(auth.check('admin', `Bearer ${ADMIN}`)?.name).toBe('ops'); // the old table stays
    fs.files.delete('/t.json');
    triggers.hup();
    expect(auth.check('admin', `Bearer ${ADMIN}`)?.name).toBe('ops');
    expect(logged.filter((l) => l.startsWith('warn')).length).toBe(2);

    stop();
    expect(triggers.watchers.size).toBe(0);
    expect(triggers.hangups.length).toBe(0);
  });

  it('refuses to open a missing or bad file', () => {
    const fs = new FakeFiles();
    expect(() => TokenAuth.open('/none.json', { fs })).toThrow(/cannot read/);
    fs.files.set('/bad.json', '{}');
    expect(() => TokenAuth.open('/bad.json', { fs })).toThrow(/tokens/);
  });

  it('reads the call token again on SIGHUP, keeping it when the new file holds none', () => {
    const fs = new FakeFiles();
    const triggers = new ManualTriggers();
    fs.files.set('/call', `${COORD}\n`);
    const call = new CallToken('/call', { fs, triggers });
    const stop = call.watch();
    expect(call.get()).toBe(COORD);
    fs.files.set('/call', `${CLIENT}\n`);
    triggers.hup();
    expect(call.get()).toBe(CLIENT);
    fs.files.set('/call', 'two words\n');
    triggers.hup();
    expect(call.get()).toBe(CLIENT);
    stop();
    fs.files.set('/empty', '');
    expect(() => new CallToken('/empty', { fs })).toThrow(/does not hold one token/);
  });
});

describe('cost', () => {
  it('measures the per-request check (µs), printed', () => {
    const entries = Array.from({ length: 1_000 }, (_, i) => ({ name: `t${i}`, roles: ['client' as const], sha256: hashToken(`token-${i}`) }));
    const table = new TokenTable([...entries, { name: 'app', roles: ['client'], sha256: hashToken(CLIENT) }]);
    const router = new Router();
    for (let i = 0; i < 12; i++) router.on('POST', `/v1/r${i}/:id/x`, () => ({ status: 200, body: {} }));
    const of = routePolicyLookup(router, { 'POST /v1/r11/:id/x': 'client' });
    const header = `Bearer ${CLIENT}`;
    const n = 50_000;
    for (let i = 0; i < 5_000; i++) authorize(table, of('POST', '/v1/r11/t1/x'), header, 0);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) authorize(table, of('POST', '/v1/r11/t1/x'), header, 0);
    const perCallUs = ((performance.now() - t0) * 1_000) / n;
    const t1 = performance.now();
    for (let i = 0; i < n; i++) refusalReplyOrUndefined(() => authorize(table, 'client', `Bearer ${OLD}`, 0));
    const missUs = ((performance.now() - t1) * 1_000) / n;
    console.log(`token check: ${perCallUs.toFixed(2)} µs per request (policy lookup over 12 routes, SHA-256, table of 1,001); unknown token refused: ${missUs.toFixed(2)} µs`);
    expect(perCallUs).toBeLessThan(1_000);
  });
});

function refusalReplyOrUndefined(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    return refusalReply(e as AppError);
  }
}
