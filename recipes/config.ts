/**
 * A configuration tree: keys `{prefix}{path}` holding JSON, each checked
 * against one JSON schema (ajv) on the way in and again on the way out, so a
 * reader gets typed values or a clear `invalid_value`, never a half-parsed
 * object. `watch` yields the whole tree after every change; a stored value
 * that does not decode is reported beside the good ones, not thrown, so one
 * bad key does not stop a service from following the rest.
 */
import { Ajv, type AnySchema, type ValidateFunction } from 'ajv';
import type { TxStore } from '../coordinator/txstore/index.js';
import { systemTimers, type Timers } from '../lib/timers.js';
import { RecipeError } from './errors.js';
import { recipeKey } from './keys.js';
import { readLine } from './ordered.js';
import { followPrefix } from './watching.js';

/** Paths are keys below the tree: "a/b/c", no empty segment. */
const PATH = /^[A-Za-z0-9._:@-]+(\/[A-Za-z0-9._:@-]+)*$/;

export interface ConfigView<T> {
  readonly values: ReadonlyMap<string, T>;
  /** Paths whose stored value does not decode, with why. */
  readonly invalid: ReadonlyMap<string, string>;
  readonly revision: number;
}

export class ConfigTree<T> {
  readonly prefix: string;
  private readonly validate: ValidateFunction;

  constructor(
    readonly store: TxStore,
    readonly name: string,
    schema: AnySchema,
    readonly timers: Timers = systemTimers,
  ) {
    this.prefix = recipeKey('config', name);
    this.validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  }

  /** Stores `value` at `path` after checking it against the schema. */
  async set(path: string, value: T): Promise<number> {
    this.decode(path, JSON.stringify(value));
    return (await this.store.put(this.key(path), JSON.stringify(value))).revision;
  }

  /** The value at `path`, or null; throws `invalid_value` if what is stored does not decode. */
  async get(path: string): Promise<T | null> {
    const kv = await this.store.get(this.key(path));
    return kv === null ? null : this.decode(path, kv.value);
  }

  async delete(path: string): Promise<boolean> {
    return (await this.store.delete(this.key(path))).deleted;
  }

  /** The whole tree at one revision. */
  async load(): Promise<ConfigView<T>> {
    const line = await readLine(this.store, this.prefix);
    return this.view(line.kvs.map((kv) => [kv.key, kv.value] as const), line.revision);
  }

  /** The tree now, then after every change, until `signal` aborts. */
  async *watch(signal?: AbortSignal): AsyncGenerator<ConfigView<T>> {
    for await (const snap of followPrefix(this.store, this.prefix, this.timers, signal)) {
      yield this.view([...snap.entries].map(([k, e]) => [k, e.value] as const), snap.revision);
    }
  }

  private view(kvs: readonly (readonly [string, string])[], revision: number): ConfigView<T> {
    const values = new Map<string, T>();
    const invalid = new Map<string, string>();
    for (const [key, raw] of kvs) {
      const path = key.slice(this.prefix.length);
      try {
        values.set(path, this.decode(path, raw));
      } catch (e) {
        invalid.set(path, e instanceof Error ? e.message : String(e));
      }
    }
    return { values, invalid, revision };
  }

  private key(path: string): string {
    if (!PATH.test(path) || path.length > 500) throw new RecipeError('invalid_value', `config path ${JSON.stringify(path)}: segments of A-Z a-z 0-9 . _ : @ - joined by "/"`);
    return `${this.prefix}${path}`;
  }

  private decode(path: string, raw: string): T {
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      throw new RecipeError('invalid_value', `${path}: not JSON`, { path });
    }
    if (!this.validate(v)) throw new RecipeError('invalid_value', `${path}: ${this.validate.errors?.map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`).join('; ')}`, { path });
    return v as T;
  }
}
