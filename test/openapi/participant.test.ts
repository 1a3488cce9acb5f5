/**
 * Goal: the participant's OpenAPI document (participant/openapi.ts) says
 * what the routes do. Every route participantApp registers is documented
 * and every documented operation is a route; the app serves the document at
 * /openapi.json; and the answers to a representative set of requests,
 * successes and errors (during recovery too), match the schema documented
 * for their status. In process: a ParticipantNode over a MemoryTxStore,
 * supertest on participantApp.
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OpenApiDocument } from '../../lib/openapi.js';
import { decisionKey } from '../../coordinator/protocol/index.js';
import { participantOpenApi } from '../../participant/openapi.js';
import { startParticipant, type ParticipantUnderTest } from '../routes/support.js';
import { documentedRoutes, expectWellFormed, expressRoutes, ResponseChecker } from './support.js';

let p: ParticipantUnderTest;
let doc: OpenApiDocument;
let checker: ResponseChecker;

beforeAll(async () => {
  p = await startParticipant();
  doc = (await request(p.app).get('/openapi.json').expect(200)).body as OpenApiDocument;
  checker = new ResponseChecker(doc);
});
afterAll(async () => {
  await p?.stop();
});

describe('the participant document', () => {
  it('is served at /openapi.json, well formed, and built from the node config', () => {
    expectWellFormed(doc);
    expect(doc).toEqual(participantOpenApi(p.node.config));
  });

  it('documents every route participantApp registers, and only those', () => {
    expect(documentedRoutes(doc)).toEqual(expressRoutes(p.app));
  });
});

describe('participant answers match the document', () => {
  const post = (path: string, body: unknown) => request(p.app).post(path).send(body as object);

  it('work, prepare and decision, and their errors', async () => {
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: 't1', work: { n: 1 } }), 200);
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: 't1', work: { n: 1 } }), 200);
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: 't1', work: { n: 2 } }), 409, 'work_conflict');
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: '-t', work: 1 }), 400, 'invalid_tx_id');
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: 't9' }), 400, 'invalid_request');
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: 't9', work: 'w'.repeat(70_000) }), 413, 'work_too_large');
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: 't9', work: 'w'.repeat(300_000) }), 413, 'body_too_large');
    checker.check('post', '/2pc/work', await request(p.app).post('/2pc/work').set('content-type', 'application/json').send('{"txId":'), 400, 'invalid_json');
    expect(checker.check('post', '/2pc/prepare', await post('/2pc/prepare', { txId: 't1' }), 200).body).toEqual({ txId: 't1', vote: 'yes' });
    expect(checker.check('post', '/2pc/prepare', await post('/2pc/prepare', { txId: 't2', deadline: Date.now() + 10_000 }), 200).body).toEqual({ txId: 't2', vote: 'no' });
    checker.check('post', '/2pc/work', await post('/2pc/work', { txId: 't1', work: { n: 1 } }), 409, 'tx_not_active');
    checker.check('post', '/2pc/decision', await post('/2pc/decision', { txId: 't1', decision: 'commit' }), 409, 'decision_not_recorded');
    checker.check('post', '/2pc/decision', await post('/2pc/decision', { txId: 't1', decision: 'maybe' }), 400, 'invalid_request');
    await p.store.casCreate(decisionKey('t1'), 'commit');
    expect(checker.check('post', '/2pc/decision', await post('/2pc/decision', { txId: 't1', decision: 'commit' }), 200).body).toMatchObject({ txId: 't1', decision: 'commit' });
    checker.check('post', '/2pc/decision', await post('/2pc/decision', { txId: 't1', decision: 'abort' }), 409, 'decision_conflict');
  });

  it('the operator routes', async () => {
    const listed = checker.check('get', '/v1/participant/transactions', await request(p.app).get('/v1/participant/transactions'), 200);
    expect((listed.body as { transactions: unknown[] }).transactions.length).toBeGreaterThan(0);
    checker.check('get', '/v1/participant/transactions', await request(p.app).get('/v1/participant/transactions?phase=refused&limit=5'), 200);
    checker.check('get', '/v1/participant/transactions', await request(p.app).get('/v1/participant/transactions?phase=lost'), 400, 'invalid_request');
    checker.check('get', '/v1/participant/transactions', await request(p.app).get('/v1/participant/transactions?since=1'), 400, 'invalid_request');
    checker.check('get', '/v1/participant/metrics', await request(p.app).get('/v1/participant/metrics'), 200);
    checker.check('get', '/readyz', await request(p.app).get('/readyz'), 200);
  });

  it('while recovering: 503 not_ready on the protocol routes, the probes answer', async () => {
    const recovering = await startParticipant({ start: false });
    try {
      const app = recovering.app;
      checker.check('post', '/2pc/work', await request(app).post('/2pc/work').send({ txId: 't1', work: 1 }), 503, 'not_ready');
      checker.check('get', '/v1/participant/transactions', await request(app).get('/v1/participant/transactions'), 503, 'not_ready');
      expect(checker.check('get', '/readyz', await request(app).get('/readyz'), 503).body).toMatchObject({ ready: false, reason: expect.any(String) });
      checker.check('get', '/v1/participant/metrics', await request(app).get('/v1/participant/metrics'), 200);
    } finally {
      await recovering.stop();
    }
  });
});
