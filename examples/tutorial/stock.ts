/**
 * The warehouse's stock: how many of each item it holds, in a small JSON
 * file. Before the tutorial this class had `quantities()` and `receive()`;
 * the tutorial adds the three participant callbacks (`prepare`, `commit`,
 * `abort`) and `restore`, so a transaction can move stock between
 * warehouses atomically.
 *
 * A transaction's work here is `{ "moves": [{ "sku": "widget", "delta": -3 }] }`.
 * `prepare` checks it and reserves what it needs; `commit` applies the
 * reservation; `abort` drops it. The file is written with `DurableJsonFile`
 * (fsync, then rename), so a committed move survives a power loss.
 */
import { DurableJsonFile, type JsonValue, type ParticipantService, type PrepareAnswer } from 'raft2pc/participant';

export interface Move {
  readonly sku: string;
  readonly delta: number;
}

interface StockFile {
  quantities: Record<string, number>;
  /** Transactions already applied here: `commit` runs again after a crash, and must not apply twice. */
  applied: string[];
}

/** The work of one transaction, or why it is not valid. */
function movesOf(work: JsonValue): Move[] | string {
  const moves = (work as { moves?: unknown } | null)?.moves;
  if (!Array.isArray(moves) || moves.length === 0) return 'work must be {"moves": [{"sku", "delta"}, ...]}';
  for (const m of moves as { sku?: unknown; delta?: unknown }[]) {
    if (typeof m?.sku !== 'string' || !Number.isSafeInteger(m.delta)) return 'each move needs a sku (string) and a delta (integer)';
  }
  return moves as Move[];
}

export class Stock implements ParticipantService {
  /** What prepared transactions hold until their decision, by transaction id. */
  private readonly reservations = new Map<string, Move[]>();

  private constructor(
    private readonly file: DurableJsonFile<StockFile>,
    private state: StockFile,
  ) {}

  static async open(path: string, initial: Record<string, number>): Promise<Stock> {
    const file = new DurableJsonFile<StockFile>(path);
    const stock = new Stock(file, (await file.read()) ?? { quantities: initial, applied: [] });
    await file.write(stock.state);
    return stock;
  }

  quantities(): Record<string, number> {
    return { ...this.state.quantities };
  }

  /** Units of each sku held by prepared transactions (taken out, or promised). */
  reserved(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const moves of this.reservations.values()) for (const m of moves) out[m.sku] = (out[m.sku] ?? 0) + Math.abs(m.delta);
    return out;
  }

  /** A delivery: the service's own route, outside any transaction (it only adds, so no reservation is broken). */
  async receive(sku: string, count: number): Promise<void> {
    if (!Number.isSafeInteger(count) || count <= 0) throw new Error('count must be a positive integer');
    await this.apply([{ sku, delta: count }], undefined);
  }

  // --- The participant callbacks (tutorial step 2) ---

  /** Validate and reserve: "yes" promises that `commit` will succeed. */
  prepare(txId: string, work: JsonValue): PrepareAnswer {
    const moves = movesOf(work);
    if (typeof moves === 'string') return { vote: 'no', reason: moves };
    const reserved = this.reserved();
    for (const { sku, delta } of moves) {
      const free = (this.state.quantities[sku] ?? 0) - (reserved[sku] ?? 0);
      if (delta < 0 && free + delta < 0) return { vote: 'no', reason: `only ${free} ${sku} free` };
    }
    this.reservations.set(txId, moves);
    return { vote: 'yes' };
  }

  /** Apply the reservation; idempotent (it runs again if the process died before the library logged it). */
  async commit(txId: string): Promise<void> {
    const moves = this.reservations.get(txId);
    if (this.state.applied.includes(txId)) return void this.reservations.delete(txId);
    // After "yes", commit may not fail for good; a throw is retried until it succeeds.
    if (moves === undefined) throw new Error(`${txId}: nothing reserved`);
    await this.apply(moves, txId);
    this.reservations.delete(txId);
  }

  abort(txId: string): void {
    this.reservations.delete(txId);
  }

  /** After a restart, take back the reservation of a transaction that voted "yes" and is not decided. */
  restore(txId: string, work: JsonValue): void {
    const moves = movesOf(work);
    if (typeof moves !== 'string') this.reservations.set(txId, moves);
  }

  private async apply(moves: readonly Move[], txId: string | undefined): Promise<void> {
    const quantities = { ...this.state.quantities };
    for (const { sku, delta } of moves) quantities[sku] = (quantities[sku] ?? 0) + delta;
    // The newest 10,000 ids are plenty: the library replays a commit only for a transaction it has not acknowledged yet.
    this.state = { quantities, applied: txId === undefined ? this.state.applied : [...this.state.applied, txId].slice(-10_000) };
    await this.file.write(this.state);
  }
}
