// Goal: the one token check of each service, in process: the coordinator's
// node:http listener (coordinatorApp with `auth`) and both participant
// adapters (participantHandler on node:http, participantRouter on express)
// check the token before the body is read (an oversized body without a
// token is 401, not 413), let a good token through, and answer exactly as
// before without a token file. Every route of each route table has a
// policy of its own (a new route must be given one: the default is admin).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COORDINATOR_ROUTE_POLICIES, coordinatorApp } from '../../coordinator/service/routes.js';
import { MemoryTxStore } from '../../coordinator/txstore/index.js';
import { silentLogger } from '../../lib/logger.js';
import { closeSharedTokenAuth, hashToken, newToken, routesWithoutPolicy, TokenAuth } from '../../lib/token-auth.js';
import { ParticipantNode, participantHandler, participantRouter } from '../../participant/index.js';
import { PARTICIPANT_ROUTE_POLICIES, participantRoutes } from '../../participant/routes.js';
import { startCoordinator, type CoordinatorUnderTest } from '../routes/support.js';
import { RecordingService } from '../twopc/support/inprocess.js';

const CLIENT = newToken();
const COORD = newToken();
let dir = '';
let file = '';
let coordinator: CoordinatorUnderTest;
let node: ParticipantNode;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'token-inproc-'));
  file = join(dir, 'tokens.json');
  writeFileSync(file, JSON.stringify({ tokens: [{ name: 'app', roles: ['client'], sha256: hashToken(CLIENT) }, { name: 'c1', roles: ['coordinator'], sha256: hashToken(COORD) }] }));
  coordinator = await startCoordinator({}, true);
  node = await ParticipantNode.open({ name: 'a', store: new MemoryTxStore(), logPath: join(dir, 'log.json'), service: new RecordingService(), logger: silentLogger, onFatal: () => undefined, config: { authTokensFile: file } });
  await node.start();
});

afterAll(async () => {
  await node?.stop();
  await coordinator?.stop();
  closeSharedTokenAuth();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('every route has a policy', () => {
  it('on the coordinator (fault routes included) and the participant', () => {
    expect(routesWithoutPolicy(coordinator.app, COORDINATOR_ROUTE_POLICIES)).toEqual([]);
    expect(routesWithoutPolicy(participantRoutes(node, { openApi: true }), PARTICIPANT_ROUTE_POLICIES)).toEqual([]);
  });
});

describe('the coordinator listener', () => {
  it('checks the token before the body, lets a client token through, and without auth answers as before', async () => {
    const app = coordinatorApp(coordinator.service, { log: silentLogger, auth: TokenAuth.open(file) });
    const huge = JSON.stringify({ metadata: { pad: 'x'.repeat(coordinator.service.config.maxBodyBytes) } });
    const refused = await request(app).post('/v1/transactions').set('content-type', 'application/json').send(huge);
    expect([refused.status, refused.body.error.code, refused.headers['www-authenticate']]).toEqual([401, 'unauthenticated', 'Bearer realm="raft2pc"']);
    expect((await request(app).post('/v1/transactions').set('authorization', `Bearer ${CLIENT}`).set('content-type', 'application/json').send(huge)).status).toBe(413);
    expect((await request(app).post('/v1/transactions').set('authorization', `Bearer ${CLIENT}`).send({})).status).toBe(201);
    expect((await request(app).get('/v1/transactions').set('authorization', `Bearer ${CLIENT}`)).status).toBe(403);
    expect((await request(app).get('/healthz')).status).toBe(200);
    expect((await request(app).get('/nothing')).status).toBe(404); // no route: not found, whatever the token
    expect((await request(coordinator.app).get('/v1/transactions')).status).toBe(200); // no auth configured
  });
});

describe('the participant adapters', () => {
  const huge = JSON.stringify({ txId: 't1', work: 'x'.repeat(300 * 1024) });

  for (const [name, make] of [
    ['participantHandler (node:http)', () => participantHandler(node)],
    ['participantRouter (express)', () => express().use(participantRouter(node))],
  ] as const) {
    it(`${name}: token before body, coordinator role for prepare, client for work`, async () => {
      const app = make();
      const r = await request(app).post('/2pc/work').set('content-type', 'application/json').send(huge);
      expect([r.status, r.body.error?.code, r.headers['www-authenticate']]).toEqual([401, 'unauthenticated', 'Bearer realm="raft2pc"']);
      expect((await request(app).post('/2pc/prepare').set('authorization', `Bearer ${CLIENT}`).send({ txId: 't1' })).body.error.code).toBe('forbidden');
      expect((await request(app).post('/2pc/work').set('authorization', `Bearer ${COORD}`).send({ txId: 't1', work: 1 })).status).toBe(403);
      expect((await request(app).get('/v1/participant/transactions').set('authorization', `Bearer ${CLIENT}`)).status).toBe(403);
      expect((await request(app).get('/readyz')).status).toBe(200);
      // Past the check, the route answers for itself (nothing in the store names t1: no vote to hold).
      const prepared = await request(app).post('/2pc/decision').set('authorization', `Bearer ${COORD}`).send({ txId: 't1', decision: 'commit' });
      expect([401, 403]).not.toContain(prepared.status);
    });
  }
});
