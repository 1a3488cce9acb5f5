/**
 * A tiny real participant for the 2PC tests and the `participant-example`
 * script: a key-value inventory (sku -> quantity) that locks the skus of a
 * transaction on prepare. Prepare says "no" when a sku is locked by another
 * transaction or would go negative. Its own state (stock and every decision
 * it applied) is a JSON file written durably (temp file, fsync, rename,
 * fsync of the directory, as the participant log), so a test can read after
 * a SIGKILL exactly what this participant applied.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { JsonValue } from '../../coordinator/protocol/index.js';
import { DurableJsonFile, type ParticipantService, type PrepareAnswer } from '../../participant/index.js';

export interface InventoryItem {
  readonly sku: string;
  readonly delta: number;
}

export interface InventoryState {
  stock: Record<string, number>;
  /** Every transaction this inventory applied, with the decision. */
  applied: Record<string, 'commit' | 'abort'>;
}

function parseWork(work: JsonValue): InventoryItem[] | string {
  const items = (work as { items?: unknown } | null)?.items;
  if (!Array.isArray(items) || items.length === 0 || items.length > 100) return 'work must be {items: [{sku, delta}, ...]} with 1 to 100 items';
  const out: InventoryItem[] = [];
  for (const it of items as unknown[]) {
    const o = it as { sku?: unknown; delta?: unknown } | null;
    if (typeof o?.sku !== 'string' || o.sku === '' || !Number.isSafeInteger(o.delta)) return 'each item needs a sku (string) and a delta (integer)';
    out.push({ sku: o.sku, delta: o.delta as number });
  }
  return out;
}

export class Inventory implements ParticipantService {
  private readonly file: DurableJsonFile<InventoryState>;
  private state: InventoryState = { stock: {}, applied: {} };
  /** sku -> the transaction holding it. */
  readonly locks = new Map<string, string>();
  private readonly reservations = new Map<string, InventoryItem[]>();

  constructor(
    dataDir: string,
    private readonly prepareDelayMs = 0,
  ) {
    mkdirSync(dataDir, { recursive: true });
    this.file = new DurableJsonFile<InventoryState>(join(dataDir, 'inventory.json'));
  }

  async load(initialStock: Record<string, number>): Promise<void> {
    const s = await this.file.read();
    if (s !== null) this.state = s;
    else {
      this.state = { stock: { ...initialStock }, applied: {} };
      await this.file.write(this.state);
    }
  }

  view(): { stock: Record<string, number>; applied: Record<string, 'commit' | 'abort'>; locks: Record<string, string> } {
    return { stock: { ...this.state.stock }, applied: { ...this.state.applied }, locks: Object.fromEntries(this.locks) };
  }

  async prepare(txId: string, work: JsonValue): Promise<PrepareAnswer> {
    if (this.prepareDelayMs > 0) await new Promise((r) => setTimeout(r, this.prepareDelayMs));
    const items = parseWork(work);
    if (typeof items === 'string') return { vote: 'no', reason: items };
    for (const { sku, delta } of items) {
      const holder = this.locks.get(sku);
      if (holder !== undefined && holder !== txId) return { vote: 'no', reason: `${sku} is locked by ${holder}` };
      if ((this.state.stock[sku] ?? 0) + delta < 0) return { vote: 'no', reason: `insufficient stock of ${sku}` };
    }
    this.lock(txId, items);
    return { vote: 'yes' };
  }

  restore(txId: string, work: JsonValue): void {
    const items = parseWork(work);
    if (typeof items !== 'string') this.lock(txId, items);
  }

  async commit(txId: string): Promise<void> {
    if (this.state.applied[txId] === 'commit') return this.unlock(txId);
    if (this.state.applied[txId] === 'abort') throw new Error(`${txId}: commit after abort`);
    const items = this.reservations.get(txId);
    if (items === undefined) throw new Error(`${txId}: commit without a reservation`);
    const stock = { ...this.state.stock };
    for (const { sku, delta } of items) stock[sku] = (stock[sku] ?? 0) + delta;
    this.state = { stock, applied: { ...this.state.applied, [txId]: 'commit' } };
    await this.file.write(this.state);
    this.unlock(txId);
  }

  async abort(txId: string): Promise<void> {
    if (this.state.applied[txId] === 'commit') throw new Error(`${txId}: abort after commit`);
    if (this.state.applied[txId] === undefined) {
      this.state = { ...this.state, applied: { ...this.state.applied, [txId]: 'abort' } };
      await this.file.write(this.state);
    }
    this.unlock(txId);
  }

  private lock(txId: string, items: InventoryItem[]): void {
    for (const { sku } of items) this.locks.set(sku, txId);
    this.reservations.set(txId, items);
  }

  private unlock(txId: string): void {
    for (const [sku, holder] of this.locks) if (holder === txId) this.locks.delete(sku);
    this.reservations.delete(txId);
  }
}
