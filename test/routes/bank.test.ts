/**
 * Goal: the demo bank's express app (demo/bank/app.ts), in process under
 * supertest over a MemoryTxStore: bad input gets a 4xx with its documented
 * code (the participant routes as their OpenAPI document says; the bank's
 * own as docs/DEMO.md says) and moves no money: neither the balances in
 * memory nor bank.json on disk nor the participant log change; work a bank
 * cannot do is accepted as opaque JSON and then voted "no", still moving
 * nothing; unknown routes answer the JSON 404 body; bodies past 256 KiB get
 * 413. Beside the real-process tests of test/demo/app.test.ts.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type express from 'express';
import request from 'supertest';
import type { Test } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../lib/logger.js';
import { MemoryTxStore } from '../../coordinator/txstore/index.js';
import { bankApp } from '../../demo/bank/app.js';
import { Bank } from '../../demo/bank/bank.js';
import { transferWork } from '../../demo/bank/work.js';
import { ParticipantNode, participantOpenApi } from '../../participant/index.js';
import { ResponseChecker } from '../openapi/support.js';

interface BankUnderTest {
  readonly dir: string;
  readonly bank: Bank;
  readonly node: ParticipantNode;
  readonly app: express.Express;
}

async function openBank(start: boolean): Promise<BankUnderTest> {
  const dir = mkdtempSync(join(tmpdir(), 'routes-bank-'));
  const bank = await Bank.open({ name: 'bank-a', dataDir: dir, openingBalances: { alice: 100, bob: 100 }, auditWaitMs: 100, onFatal: (e) => { throw e; } });
  const node = await ParticipantNode.open({ name: 'bank-a', store: new MemoryTxStore(), logPath: join(dir, 'participant-log.json'), service: bank, logger: silentLogger, onFatal: () => undefined });
  if (start) await node.start();
  return { dir, bank, node, app: bankApp({ name: 'bank-a', bank, node, log: silentLogger, pid: 4242 }) };
}

async function closeBank(b: BankUnderTest | undefined): Promise<void> {
  if (b === undefined) return;
  await b.node.stop();
  rmSync(b.dir, { recursive: true, force: true });
}

let b: BankUnderTest;
let checker: ResponseChecker;

beforeAll(async () => {
  b = await openBank(true);
  checker = new ResponseChecker(participantOpenApi(b.node.config));
});
afterAll(async () => {
  await closeBank(b);
});

/** Where money could move: the balances as served, the file they are kept in, and the participant log. */
function money(): unknown {
  return { accounts: b.bank.accounts(), file: readFileSync(join(b.dir, 'bank.json'), 'utf8'), log: readFileSync(join(b.dir, 'participant-log.json'), 'utf8') };
}

const post = (path: string, body: unknown): Test => request(b.app).post(path).send(body as object);

describe('bank routes: bad input moves no money', () => {
  it.each([
    ['work without a txId', '/2pc/work', () => post('/2pc/work', { work: transferWork([{ account: 'alice', delta: -1 }]) }), 400, 'invalid_request'],
    ['work with a txId outside the alphabet', '/2pc/work', () => post('/2pc/work', { txId: 'a b', work: {} }), 400, 'invalid_tx_id'],
    ['work that is not JSON', '/2pc/work', () => request(b.app).post('/2pc/work').set('content-type', 'application/json').send('{"txId":"t1","work":{'), 400, 'invalid_json'],
    ['a body past 256 KiB', '/2pc/work', () => post('/2pc/work', { txId: 't1', work: { type: 'transfer', pad: 'x'.repeat(256 * 1024) } }), 413, 'body_too_large'],
    ['a decision the store does not hold', '/2pc/decision', () => post('/2pc/decision', { txId: 't1', decision: 'commit' }), 409, 'decision_not_recorded'],
  ] as const)('%s: 4xx with the documented code', async (_what, path, send, status, code) => {
    const before = money();
    checker.check('post', path, await send(), status, code);
    expect(money()).toEqual(before);
  });

  it('work the bank cannot do is taken as opaque JSON, then voted "no"; balances stay', async () => {
    const before = b.bank.accounts();
    const bad = { type: 'transfer', ops: [{ account: 'alice', delta: -1_000 }] }; // more than alice has
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: 'over', work: bad }), 200);
    expect(checker.check('post', '/2pc/prepare', await post('/2pc/prepare', { txId: 'over' }), 200).body).toEqual({ txId: 'over', vote: 'no' });
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: 'junk', work: { type: 'loan' } }), 200);
    expect(checker.check('post', '/2pc/prepare', await post('/2pc/prepare', { txId: 'junk' }), 200).body).toEqual({ txId: 'junk', vote: 'no' });
    expect(b.bank.accounts()).toEqual(before);
    expect(b.bank.locks()).toEqual({ holds: 0, readLocks: 0 });
  });

  it("the bank's own routes: 400 invalid_tx_id, 404 audit_not_found, and the accounts", async () => {
    const bad = await request(b.app).get('/v1/audits/-x');
    expect([bad.status, bad.body]).toEqual([400, { error: { code: 'invalid_tx_id', message: expect.any(String) } }]);
    const missing = await request(b.app).get('/v1/audits/t404');
    expect([missing.status, missing.body]).toEqual([404, { error: { code: 'audit_not_found', message: expect.any(String) } }]);
    expect((await request(b.app).get('/v1/accounts').expect(200)).body).toEqual(b.bank.accounts());
    expect((await request(b.app).get('/v1/summary').expect(200)).body).toMatchObject({ name: 'bank-a', pid: 4242, total: 200, openingTotal: 200 });
  });

  it.each([
    ['GET', '/v1/nothing'],
    ['DELETE', '/v1/accounts'],
    ['POST', '/v1/summary'],
  ])('%s %s answers 404 not_found as JSON', async (method, path) => {
    const res = await request(b.app)[method.toLowerCase() as 'get' | 'delete' | 'post'](path);
    checker.checkUnrouted(res, 404, 'not_found');
  });
});

describe('bank routes while recovering', () => {
  it('answer 503 not_ready, and health says not ok', async () => {
    const recovering = await openBank(false);
    try {
      const accounts = await request(recovering.app).get('/v1/accounts');
      expect([accounts.status, accounts.headers['retry-after'], accounts.body.error?.code]).toEqual([503, '1', 'not_ready']);
      checker.check('post', '/2pc/work', await request(recovering.app).post('/2pc/work').send({ txId: 't1', work: {} }), 503, 'not_ready');
      expect((await request(recovering.app).get('/healthz')).status).toBe(503);
    } finally {
      await closeBank(recovering);
    }
  });
});
