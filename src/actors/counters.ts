/**
 * An actor system's counters in its process's counter table (src/runtime/counters.ts): a row per
 * local actor (received, processed, failed, dead letters, restarts, mailbox depth), a row per
 * ask target (ask latency histogram, failures, timeouts), the process's dead letters. The
 * system and its cells count with plain increments on these rows; depths are written by the
 * table's sampler. `system.counters(name)` reads the same rows.
 */
import { processCounters, recordAsk, type CounterTable } from '../runtime/counters.js';
import { P, R } from '../runtime/counters-layout.js';
import type { ActorCounters } from './context.js';
import type { PendingAsk } from './pending.js';
import type { ActorTransport } from './transport.js';

/** The actor fields of a row, as `system.counters(name)` returns them. */
export function actorCounters(row: Float64Array, mailboxDepth: number): ActorCounters {
  return {
    received: row[R.received]!,
    processed: row[R.processed]!,
    failed: row[R.failed]!,
    restarts: row[R.restarts]!,
    deadLettered: row[R.deadLettered]!,
    mailboxDepth,
  };
}

/** What the sampler needs of a local actor. */
interface Counted {
  readonly name: string;
  readonly counters: Float64Array;
  depth(): number;
}

export class SystemCounters {
  private readonly table: CounterTable;
  private readonly asks = new Map<string, Float64Array>();
  private readonly removeGauges: () => void;
  private lastTo: string | undefined;
  private lastRow: Float64Array | undefined;

  constructor(cells: () => Iterable<Counted>, transport: ActorTransport) {
    this.table = processCounters();
    this.removeGauges = this.table.addGauges(() => {
      for (const cell of cells()) cell.counters[R.depth] = Math.max(cell.depth(), transport.depth(cell.name) ?? 0);
    });
  }

  /** The row of a local actor (kept across its restarts). */
  actorRow(name: string): Float64Array {
    return this.table.row('actor', name);
  }

  /** A local actor stopped: its row is free again. */
  actorStopped(name: string, row: Float64Array): void {
    this.table.release('actor', name, row);
  }

  /**
   * An ask made here (or forwarded by a router here) was answered or failed: its latency goes
   * to the histogram of the actor that answered (a router's worker, else the name asked).
   */
  answered(p: PendingAsk, failed: boolean): void {
    recordAsk(this.askRow(p.worker ?? p.to), p.due - p.timeoutMs, failed);
  }

  /** An ask made or forwarded here timed out: an ask that failed, after its whole timeout. */
  timedOut(p: PendingAsk): void {
    const row = this.askRow(p.worker ?? p.to);
    recordAsk(row, p.due - p.timeoutMs, true);
    row[R.askTimeouts]!++;
  }

  /**
   * `name` went away: the row of asks to it is freed (no view shows asks to an actor that is
   * not there, and a process asking workers that come and go would otherwise fill the table).
   */
  forget(name: string): void {
    const row = this.asks.get(name);
    if (row === undefined) return;
    this.asks.delete(name);
    this.table.release('asks', name, row);
    if (this.lastTo === name) {
      this.lastTo = undefined;
      this.lastRow = undefined;
    }
  }

  /** A message became a dead letter in this system. */
  deadLetter(): void {
    this.table.process[P.deadLetters]!++;
  }

  /** The system closed: its actors' depths are no longer sampled. */
  close(): void {
    this.removeGauges();
  }

  private askRow(to: string): Float64Array {
    // Most asks go where the previous one went (one router, one service): no map lookup then.
    if (to === this.lastTo) return this.lastRow!;
    let row = this.asks.get(to);
    if (!row) this.asks.set(to, (row = this.table.row('asks', to)));
    this.lastTo = to;
    this.lastRow = row;
    return row;
  }
}
