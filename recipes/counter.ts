/**
 * An atomic counter: one key, changed by CAS on its exact value. Each value
 * carries the writer's nonce, so an ambiguous write is settled where it can
 * be: etcd's client retrying a CAS that was applied answers with our value
 * as `previous`, and a read that finds our value proves it applied. Anything
 * else after a failed write is unknown (a write that timed out may still be
 * applied later), and `add` says so (RecipeError `outcome_unknown`) rather
 * than retry: a retry could count the increment twice.
 */
import { isRetryableStoreError, type TxKeyValue, type TxStore } from '../coordinator/txstore/index.js';
import { systemRandom, type Random } from '../lib/random.js';
import { RecipeError } from './errors.js';
import { recipeKey } from './keys.js';

/** Most CAS attempts of one `add` (each lost to another writer). */
const MAX_ATTEMPTS = 1_000;

interface Stored {
  readonly n: number;
  readonly w: string;
}

function decode(kv: TxKeyValue | null): number {
  if (kv === null) return 0;
  const v = JSON.parse(kv.value) as Partial<Stored>;
  if (typeof v.n !== 'number' || !Number.isSafeInteger(v.n)) throw new RecipeError('invalid_value', `${kv.key} holds no counter: ${kv.value.slice(0, 100)}`);
  return v.n;
}

export class Counter {
  readonly key: string;

  constructor(
    readonly store: TxStore,
    readonly name: string,
    private readonly random: Random = systemRandom,
  ) {
    this.key = `${recipeKey('counter', name)}value`;
  }

  async get(): Promise<number> {
    return decode(await this.store.get(this.key));
  }

  /** Adds `delta` (may be negative); returns the new value. */
  async add(delta: number): Promise<number> {
    if (!Number.isSafeInteger(delta)) throw new RecipeError('invalid_value', `delta must be a safe integer, got ${delta}`);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const kv = await this.store.get(this.key);
      const n = decode(kv) + delta;
      const mine = JSON.stringify({ n, w: `${this.random.int(2 ** 32).toString(16)}${this.random.int(2 ** 32).toString(16)}` });
      const outcome = await this.write(kv, mine);
      if (outcome === 'applied') return n;
    }
    throw new RecipeError('limit_exceeded', `${this.key}: ${MAX_ATTEMPTS} CAS attempts lost to other writers`);
  }

  increment(): Promise<number> {
    return this.add(1);
  }

  /** One CAS from `kv` to `mine`: applied, or not (try again); throws `outcome_unknown` when it cannot tell. */
  private async write(kv: TxKeyValue | null, mine: string): Promise<'applied' | 'lost'> {
    try {
      const r = kv === null ? await this.store.casCreate(this.key, mine) : await this.store.casValue(this.key, kv.value, mine);
      return r.succeeded || r.previous === mine ? 'applied' : 'lost';
    } catch (e) {
      if (!isRetryableStoreError(e)) throw e;
      // Even the old value still there proves nothing: the write may yet be applied later.
      const now = await this.store.get(this.key).catch(() => null);
      if (now?.value === mine) return 'applied';
      throw new RecipeError('outcome_unknown', `${this.key}: a write failed (${e instanceof Error ? e.message : String(e)}) and the key has changed since`, { key: this.key }, { cause: e });
    }
  }
}
