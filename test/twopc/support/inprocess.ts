/**
 * Test support for fast unit tests of the runtimes: a coordinator service and
 * participant nodes in this process, over one MemoryTxStore (unit tests
 * only: it is neither replicated nor durable), each participant with a real
 * log file in a temp dir and its routes on an ephemeral port.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makeCoordinatorConfig, type CoordinatorConfig } from '../../../coordinator/runtime/config.js';
import { silentLogger } from '../../../lib/logger.js';
import type { JsonValue, VoteValue } from '../../../coordinator/protocol/kernel.js';
import { CoordinatorServer } from '../../../coordinator/service/server.js';
import type { CoordinatorService } from '../../../coordinator/service/service.js';
import type { TxStore } from '../../../coordinator/txstore/txstore.js';
import { ParticipantNode, type ParticipantService, type PrepareAnswer } from '../../../participant/participant.js';
import { participantApp } from '../../../participant/routes.js';

/** A participant service that records every callback and answers prepare as told. */
export class RecordingService implements ParticipantService {
  readonly calls: string[] = [];
  answer: PrepareAnswer = { vote: 'yes' };
  /** Per transaction answers, when set. */
  readonly answers = new Map<string, VoteValue>();

  prepare(txId: string, _work: JsonValue): PrepareAnswer {
    this.calls.push(`prepare ${txId}`);
    const v = this.answers.get(txId);
    return v === undefined ? this.answer : { vote: v };
  }
  commit(txId: string): void {
    this.calls.push(`commit ${txId}`);
  }
  abort(txId: string): void {
    this.calls.push(`abort ${txId}`);
  }
  restore(txId: string): void {
    this.calls.push(`restore ${txId}`);
  }
  applied(txId: string): 'commit' | 'abort' | undefined {
    if (this.calls.includes(`commit ${txId}`)) return 'commit';
    if (this.calls.includes(`abort ${txId}`)) return 'abort';
    return undefined;
  }
}

export interface LocalParticipant {
  readonly name: string;
  readonly node: ParticipantNode;
  readonly service: RecordingService;
  readonly url: string;
  close(): Promise<void>;
}

export async function startParticipant(store: TxStore, dir: string, name: string, service = new RecordingService(), serve = true): Promise<LocalParticipant> {
  const node = await ParticipantNode.open({ name, store, logPath: join(dir, `${name}.json`), service, logger: silentLogger, onFatal: (e) => { throw e; } });
  await node.start();
  let server: Server | undefined;
  let url = 'http://127.0.0.1:9'; // discard port: hints to an unserved participant fail at once
  if (serve) {
    const s = participantApp(node).listen(0, '127.0.0.1');
    await new Promise<void>((res) => s.once('listening', res));
    server = s;
    url = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
  }
  return {
    name,
    node,
    service,
    url,
    async close() {
      await node.stop();
      if (server !== undefined) {
        server.closeAllConnections();
        await new Promise<void>((res) => server?.close(() => res()));
      }
    },
  };
}

export async function startCoordinator(store: TxStore, overrides: Partial<CoordinatorConfig> = {}): Promise<{ server: CoordinatorServer; service: CoordinatorService; url: string }> {
  const config = makeCoordinatorConfig({ id: 'c1', recoveryIntervalMs: 100, ackWaitMs: 2_000, hintTimeoutMs: 500, ...overrides });
  const server = new CoordinatorServer({ config, store, log: silentLogger });
  const port = await server.start({ port: 0 });
  return { server, service: server.service, url: `http://127.0.0.1:${port}` };
}
