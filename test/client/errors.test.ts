// Goal: the SDK's error code union stays complete: every code the
// coordinator's sources answer with (AppError and ProtocolError codes in
// coordinator/, the JSON error bodies of lib/express.ts) and every code of
// the coordinator machine's replies is a CoordinatorAnswerCode, checked both
// by reading the sources and by the compiler (expectTypeOf).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { COORDINATOR_ANSWER_CODES, CoordinatorError, type CoordinatorAnswerCode, type CoordinatorErrorCode } from 'raft2pc/client';
import type { CoordinatorErrorCode as MachineErrorCode } from '../../coordinator/core/index.js';
import type { ProtocolError } from '../../coordinator/protocol/index.js';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

/** Codes in the sources that never reach a client: caught inside begin, or refused at start-up. */
const NEVER_ANSWERED = new Set(['tx_collected', 'invalid_store']);

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return tsFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

function codesIn(text: string, pattern: RegExp): string[] {
  return [...text.matchAll(pattern)].map((m) => m[1] as string);
}

describe('CoordinatorErrorCode', () => {
  it('names every code the coordinator sources answer with', () => {
    const found = new Set<string>();
    for (const file of tsFiles(join(ROOT, 'coordinator'))) {
      for (const code of codesIn(readFileSync(file, 'utf8'), /new (?:AppError|ProtocolError)\(\s*'([a-z_]+)'/g)) found.add(code);
    }
    for (const code of codesIn(readFileSync(join(ROOT, 'lib/express.ts'), 'utf8'), /code: '([a-z_]+)'/g)) found.add(code);
    const known: ReadonlySet<string> = new Set(COORDINATOR_ANSWER_CODES);
    const missing = [...found].filter((c) => !known.has(c) && !NEVER_ANSWERED.has(c));
    expect(missing).toEqual([]);
    // The scan sees something: a broken pattern would pass the check above vacuously.
    expect(found.has('tx_not_found') && found.has('invalid_json')).toBe(true);
  });

  it("covers the machine's reply codes and the protocol's validation codes (checked by the compiler)", () => {
    expectTypeOf<MachineErrorCode>().toExtend<CoordinatorAnswerCode>();
    expectTypeOf<ConstructorParameters<typeof ProtocolError>[0]>().toExtend<CoordinatorAnswerCode>();
    expectTypeOf<CoordinatorError['code']>().toEqualTypeOf<CoordinatorErrorCode>();
  });

  it('says which codes are worth retrying', () => {
    const e = (code: CoordinatorErrorCode): CoordinatorError => new CoordinatorError(code, 'm', { status: 0 });
    expect(['unavailable', 'timeout', 'store_unavailable', 'too_many_transactions', 'shutting_down'].map((c) => e(c as CoordinatorErrorCode).retryable)).toEqual([true, true, true, true, true]);
    expect(['tx_not_found', 'already_committed', 'invalid_request', 'outcome_unknown', 'internal'].map((c) => e(c as CoordinatorErrorCode).retryable)).toEqual([false, false, false, false, false]);
  });
});
