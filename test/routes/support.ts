/**
 * In-process services for the route-level tests (supertest drives their
 * node:http listeners and express apps; nothing listens on a port of its own): a coordinator over a
 * MemoryTxStore whose participants are played by the store (a prepare hint
 * writes a "yes" vote, a decision hint the ack), and a participant node
 * over a MemoryTxStore with its log in a temp folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type express from 'express';
import type { HttpApp } from '../../lib/http.js';
import { NO_FAILPOINTS } from '../../lib/failpoints.js';
import { silentLogger } from '../../lib/logger.js';
import { SeededRandom } from '../../lib/random.js';
import { systemTimers } from '../../lib/timers.js';
import { ackKey, encodeAck, encodeVote, makeVote, voteKey, type Decision } from '../../coordinator/protocol/index.js';
import { makeCoordinatorConfig, type CoordinatorConfig, type HintResult, type HintSender } from '../../coordinator/runtime/index.js';
import { coordinatorApp } from '../../coordinator/service/routes.js';
import { CoordinatorService } from '../../coordinator/service/service.js';
import { MemoryTxStore, rangeAll, type TxStore } from '../../coordinator/txstore/index.js';
import { ParticipantNode, participantApp } from '../../participant/index.js';
import { RecordingService } from '../twopc/support/inprocess.js';

/** Participants named by their URL's host (`http://a`), answering hints by writing to the store as real ones would. */
export class StoreVoters implements HintSender {
  constructor(private readonly store: TxStore) {}

  async prepare(url: string, txId: string): Promise<HintResult> {
    const name = new URL(url).hostname;
    await this.store.casCreate(voteKey(txId, name), encodeVote(makeVote('yes', name)));
    return { ok: true, status: 200 };
  }

  async decision(url: string, txId: string, _decision: Decision): Promise<HintResult> {
    const name = new URL(url).hostname;
    await this.store.casCreate(ackKey(txId, name), encodeAck(Date.now()));
    return { ok: true, status: 200 };
  }
}

export interface CoordinatorUnderTest {
  readonly store: MemoryTxStore;
  readonly service: CoordinatorService;
  /** The coordinator's routes as a node:http listener (lib/http.ts): supertest drives it as is. */
  readonly app: HttpApp;
  stop(): Promise<void>;
}

export async function startCoordinator(overrides: Partial<CoordinatorConfig> = {}, faults = false): Promise<CoordinatorUnderTest> {
  const store = new MemoryTxStore();
  const config = makeCoordinatorConfig({ id: 'c1', ...overrides });
  const service = new CoordinatorService({ config, store, timers: systemTimers, random: new SeededRandom(7), hints: new StoreVoters(store), failpoints: NO_FAILPOINTS, log: silentLogger });
  await service.start();
  const app = coordinatorApp(service, { log: silentLogger, ...(faults ? { blockedHintUrls: new Set<string>() } : {}) });
  return { store, service, app, stop: () => service.stop() };
}

export interface ParticipantUnderTest {
  readonly store: MemoryTxStore;
  readonly node: ParticipantNode;
  readonly service: RecordingService;
  readonly app: express.Express;
  readonly logPath: string;
  stop(): Promise<void>;
}

/** A started participant `a`; `start: false` leaves it recovering (every route but the probes answers 503). */
export async function startParticipant(opts: { readonly start?: boolean } = {}): Promise<ParticipantUnderTest> {
  const store = new MemoryTxStore();
  const dir = mkdtempSync(join(tmpdir(), 'routes-participant-'));
  const service = new RecordingService();
  const logPath = join(dir, 'log.json');
  const node = await ParticipantNode.open({ name: 'a', store, logPath, service, logger: silentLogger, onFatal: () => undefined });
  if (opts.start !== false) await node.start();
  return {
    store,
    node,
    service,
    app: participantApp(node),
    logPath,
    async stop() {
      await node.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every key and value in the store: what "changes nothing" compares. */
export async function storeContents(store: TxStore): Promise<Record<string, string>> {
  const { kvs } = await rangeAll(store, '');
  return Object.fromEntries(kvs.map((kv) => [kv.key, kv.value]));
}
