/**
 * Goal: participantApp, in process under supertest, refuses bad input with
 * a 4xx carrying the documented error code (checked against its own
 * /openapi.json) and changes nothing: not the local log file, not the
 * store, not the service (no callback runs); refuses bodies past its cap
 * (256 KiB) with 413 body_too_large. Beside the real-process participant
 * tests of test/twopc/, not instead of them.
 */
import { readFileSync } from 'node:fs';
import request from 'supertest';
import type { Test } from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { ResponseChecker } from '../openapi/support.js';
import { startParticipant, storeContents, type ParticipantUnderTest } from './support.js';

let p: ParticipantUnderTest;
let checker: ResponseChecker;

beforeAll(async () => {
  p = await startParticipant();
  checker = new ResponseChecker((await request(p.app).get('/openapi.json').expect(200)).body as OpenApiDocument);
});
afterAll(async () => {
  await p?.stop();
});

const post = (path: string, body: unknown): Test => request(p.app).post(path).send(body as object);

/** [what, the request, documented method and path, status, code] */
type BadCase = readonly [string, () => Test, string, string, number, string];

const badInput: readonly BadCase[] = [
  ['work without work', () => post('/2pc/work', { txId: 't1' }), 'post', '/2pc/work', 400, 'invalid_request'],
  ['work with an unknown field', () => post('/2pc/work', { txId: 't1', work: 1, extra: true }), 'post', '/2pc/work', 400, 'invalid_request'],
  ['work with an empty txId', () => post('/2pc/work', { txId: '', work: 1 }), 'post', '/2pc/work', 400, 'invalid_request'],
  ['work with a txId over 128 characters', () => post('/2pc/work', { txId: 't'.repeat(129), work: 1 }), 'post', '/2pc/work', 400, 'invalid_request'],
  ['work with a txId outside the alphabet', () => post('/2pc/work', { txId: 't/1', work: 1 }), 'post', '/2pc/work', 400, 'invalid_tx_id'],
  ['work over 64 Ki characters', () => post('/2pc/work', { txId: 't1', work: 'w'.repeat(70_000) }), 'post', '/2pc/work', 413, 'work_too_large'],
  ['a body past 256 KiB', () => post('/2pc/work', { txId: 't1', work: 'w'.repeat(256 * 1024) }), 'post', '/2pc/work', 413, 'body_too_large'],
  ['a body that is not JSON', () => request(p.app).post('/2pc/work').set('content-type', 'application/json').send('{"txId": "t1", "work": '), 'post', '/2pc/work', 400, 'invalid_json'],
  ['prepare with a negative deadline', () => post('/2pc/prepare', { txId: 't1', deadline: -1 }), 'post', '/2pc/prepare', 400, 'invalid_request'],
  ['prepare with a numeric txId', () => post('/2pc/prepare', { txId: 1 }), 'post', '/2pc/prepare', 400, 'invalid_request'],
  ['prepare with a txId outside the alphabet', () => post('/2pc/prepare', { txId: '.t' }), 'post', '/2pc/prepare', 400, 'invalid_tx_id'],
  ['a decision that is neither commit nor abort', () => post('/2pc/decision', { txId: 't1', decision: 'maybe' }), 'post', '/2pc/decision', 400, 'invalid_request'],
  ['a decision the store does not hold', () => post('/2pc/decision', { txId: 't1', decision: 'commit' }), 'post', '/2pc/decision', 409, 'decision_not_recorded'],
  ['a listing of an unknown phase', () => request(p.app).get('/v1/participant/transactions?phase=lost'), 'get', '/v1/participant/transactions', 400, 'invalid_request'],
  ['a listing with a limit that is not a number', () => request(p.app).get('/v1/participant/transactions?limit=ten'), 'get', '/v1/participant/transactions', 400, 'invalid_request'],
];

/** Everything a request could change: the log on disk, the node's view of it, the store, the service's callbacks. */
async function state(): Promise<unknown> {
  return { log: readFileSync(p.logPath, 'utf8'), listed: p.node.transactions({ limit: 1_000 }), store: await storeContents(p.store), calls: [...p.service.calls] };
}

describe('participant routes: bad input', () => {
  it.each(badInput)('%s: 4xx with the documented code, and nothing changes', async (_what, send, method, path, status, code) => {
    const before = await state();
    checker.check(method, path, await send(), status, code);
    expect(await state()).toEqual(before);
  });

  it('the same check sees a change when a request makes one', async () => {
    const before = await state();
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: 'ok1', work: { n: 1 } }), 200);
    checker.check('post', '/2pc/prepare', await post('/2pc/prepare', { txId: 'ok1' }), 200);
    expect(await state()).not.toEqual(before);
    expect(p.service.calls).toContain('prepare ok1');
  });
});

describe('participant routes: no such route', () => {
  it.each([
    ['GET', '/v1/nothing'],
    ['POST', '/2pc/nothing'],
    ['GET', '/2pc/work'],
  ])('%s %s answers 404 not_found as JSON', async (method, path) => {
    const res = await request(p.app)[method.toLowerCase() as 'get' | 'post'](path);
    checker.checkUnrouted(res, 404, 'not_found');
  });
});
