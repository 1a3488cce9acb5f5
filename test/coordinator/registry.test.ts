// Goal: participants registered by name (issue 16, SSRF). With a registry
// the coordinator accepts only registered names and calls only registered
// URLs: a begin or enlist naming an unregistered participant, or a
// registered one at another URL, is refused with 400 and writes nothing,
// and no prepare or decision call ever goes to a URL a client chose. The
// flag's parser refuses malformed entries; without a registry nothing
// changes.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../lib/errors.js';
import { silentLogger } from '../../lib/logger.js';
import { SeededRandom } from '../../lib/random.js';
import { VirtualTimers } from '../support/virtual-timers.js';
import { makeCoordinatorConfig } from '../../coordinator/runtime/config.js';
import type { HintSender } from '../../coordinator/runtime/hints.js';
import { parseRegistry, requestedParticipant } from '../../coordinator/runtime/registry.js';
import { CoordinatorService } from '../../coordinator/service/service.js';
import { MemoryTxStore } from '../../coordinator/txstore/memory.js';

const REGISTRY = { a: 'http://127.0.0.1:7101', b: 'https://bank-b.internal:7443' };
const EVIL = 'http://169.254.169.254:80';

function recordingHints(called: string[]): HintSender {
  return {
    prepare: async (url) => (called.push(url), { ok: false, error: 'no answer' }),
    decision: async (url) => (called.push(url), { ok: false, error: 'no answer' }),
  };
}

async function refusal(p: Promise<unknown>): Promise<AppError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(AppError);
  return e as AppError;
}

describe('participant registry', () => {
  it('parses NAME=URL entries and refuses malformed ones, naming each problem', () => {
    expect(parseRegistry(['a=http://127.0.0.1:7101', 'b=https://bank-b.internal:7443'])).toEqual(REGISTRY);
    expect(() => parseRegistry(['a'])).toThrow(/--participant a/);
    expect(() => parseRegistry(['a=ftp://x'])).toThrow(/--participant a=ftp/);
    expect(() => parseRegistry(['bad/name=http://x:1'])).toThrow(/name/);
    expect(() => parseRegistry(['a=http://x:1', 'a=http://y:1'])).toThrow(/twice/);
    expect(() => makeCoordinatorConfig({ id: 'c1', participantRegistry: { a: 'not a url' } })).toThrow(/participantRegistry a/);
  });

  it('resolves a name to its registered URL; an unknown name or another URL is a 400', () => {
    expect(requestedParticipant({ name: 'a' }, REGISTRY)).toEqual({ name: 'a', url: REGISTRY.a });
    expect(requestedParticipant({ name: 'b', url: REGISTRY.b }, REGISTRY)).toEqual({ name: 'b', url: REGISTRY.b });
    for (const p of [{ name: 'evil', url: EVIL }, { name: 'a', url: EVIL }, { name: 'toString' }, {}, null, 'a']) {
      expect(() => requestedParticipant(p, REGISTRY), JSON.stringify(p)).toThrow(expect.objectContaining({ code: 'unregistered_participant', status: 400 }));
    }
    // Without a registry a client still gives the URL.
    expect(requestedParticipant({ name: 'x', url: EVIL }, null)).toEqual({ name: 'x', url: EVIL });
  });

  it('a client cannot make the coordinator call an unregistered address: refused at begin and enlist, nothing written, no call', async () => {
    const timers = new VirtualTimers();
    const store = new MemoryTxStore({ clock: timers });
    const called: string[] = [];
    const config = makeCoordinatorConfig({ id: 'c1', participantRegistry: REGISTRY, recoveryIntervalMs: 100 });
    const service = new CoordinatorService({ config, store, timers, random: new SeededRandom(7), hints: recordingHints(called), failpoints: { hit: () => undefined }, log: silentLogger });
    await service.start();
    try {
      expect((await refusal(service.begin({ participants: [{ name: 'evil', url: EVIL }] }, undefined))).code).toBe('unregistered_participant');
      expect((await refusal(service.begin({ participants: [{ name: 'a', url: EVIL }] }, undefined))).code).toBe('unregistered_participant');
      expect((await store.range('tx/')).kvs).toHaveLength(0);
      const begun = await service.begin({ participants: [{ name: 'a' }], timeoutMs: 1_000 }, undefined);
      expect((await refusal(service.enlist(begun.id, { name: 'evil', url: EVIL }))).code).toBe('unregistered_participant');
      await service.enlist(begun.id, { name: 'b' });
      const stored = JSON.parse((await store.get(`tx/${begun.id}`))!.value) as { participants: { name: string; url: string }[] };
      expect(stored.participants).toEqual([
        { name: 'a', url: REGISTRY.a },
        { name: 'b', url: REGISTRY.b },
      ]);
      // Commit: prepares go out (and fail); the deadline aborts; every call went to a registered URL.
      const outcome = service.commit(begun.id);
      await timers.until(() => called.length >= 2, 5_000, 'prepare calls');
      await timers.advance(3_000);
      await outcome.catch(() => undefined);
      expect(called.length).toBeGreaterThan(0);
      for (const url of called) expect(Object.values(REGISTRY)).toContain(url);
    } finally {
      await service.stop();
    }
  });
});
