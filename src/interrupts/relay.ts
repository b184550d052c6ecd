/**
 * The primary's broadcasts of interrupt events to every secondary (see relay-protocol.ts for the
 * protocol): one broadcast in flight at a time, the events that come meanwhile batched into the
 * next, a bounded history for replays, and beacons of the latest seq while some secondary missed
 * a broadcast.
 */
import type { Logger } from 'pino';
import type { MpBusError } from '../errors.js';
import type { MpBus } from '../bus/index.js';
import { BEACON_INTERVAL_MS, EVENT_NAME, HISTORY_LIMIT, type EventMessage, type RelayEndFile, type ReplayReply } from './relay-protocol.js';
import type { InterruptEvent, RelayStats } from './types.js';

/**
 * The primary's broadcasts of events: one in flight at a time, the events that come meanwhile
 * batched into the next, a bounded history for replays, beacons while some secondary missed one.
 */
export class EventRelay {
  private readonly history: InterruptEvent[] = [];
  private pending: InterruptEvent[] = [];
  private inFlight = false;
  private latest = 0;
  /** Some broadcast did not reach every secondary, and none has since. */
  private missed = false;
  private beacon: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly counts = { batches: 0, events: 0, largestBatch: 0, failed: 0, beacons: 0, replays: 0, lossesReported: 0 };

  /** `endFile`: where the last seq is recorded as the relay closes (see {@link RelayEndFile}). */
  constructor(
    private readonly bus: MpBus,
    private readonly log: Logger,
    private readonly endFile?: RelayEndFile,
  ) {}

  stats(): RelayStats {
    return { ...this.counts, history: Math.min(this.history.length, HISTORY_LIMIT) };
  }

  push(event: InterruptEvent): void {
    this.history.push(event);
    // Trimmed in bulk, so keeping the history costs O(1) per event.
    if (this.history.length >= 2 * HISTORY_LIMIT) this.history.splice(0, this.history.length - HISTORY_LIMIT);
    this.latest = event.seq;
    this.pending.push(event);
    this.flush();
  }

  /** The events from `from` on; those the history no longer has are reported as lost. */
  replay(from: number): ReplayReply {
    const oldest = this.history[0]?.seq ?? this.latest + 1;
    const start = Math.max(from, oldest, this.latest - HISTORY_LIMIT + 1);
    const reply: ReplayReply = { events: this.history.slice(Math.max(0, start - oldest)) };
    this.counts.replays += 1;
    if (from < start) {
      reply.lost = { from, to: start - 1 };
      this.counts.lossesReported += 1;
    }
    return reply;
  }

  private flush(): void {
    if (this.inFlight || this.closed || this.pending.length === 0) return;
    const events = this.pending;
    this.pending = [];
    this.counts.batches += 1;
    this.counts.events += events.length;
    this.counts.largestBatch = Math.max(this.counts.largestBatch, events.length);
    this.send({ events });
  }

  private send(message: EventMessage): void {
    this.inFlight = true;
    try {
      this.bus.broadcast(EVENT_NAME, message, { onSent: (err) => this.sent(err) });
    } catch (err) {
      // The bus is closing (or the value cannot be encoded: a bug): the primary's own
      // subscribers got the events; secondaries that see a later seq ask for these.
      this.inFlight = false;
      this.log.debug({ err }, 'events not relayed');
    }
  }

  private sent(err: MpBusError | undefined): void {
    this.inFlight = false;
    if (this.closed) return;
    if (err) {
      this.counts.failed += 1;
      if (!this.missed) this.log.info({ err: err.message, latest: this.latest }, 'a secondary missed events: beaconing until every secondary gets a broadcast');
      this.missed = true;
      this.beacon ??= setInterval(() => this.sendBeacon(), BEACON_INTERVAL_MS).unref();
    } else if (this.missed) {
      // Every secondary got a message with the latest seq: each one that missed something
      // now sees the gap and asks for a replay.
      this.missed = false;
      clearInterval(this.beacon);
      this.beacon = undefined;
    }
    this.flush();
  }

  private sendBeacon(): void {
    if (this.inFlight || this.closed || this.pending.length > 0) return;
    this.counts.beacons += 1;
    this.send({ latest: this.latest });
  }

  /**
   * Sends what is pending, even behind a batch in flight (the bus's sender thread keeps their
   * order), then `end`: secondaries then know they have every event, or which they missed.
   * Before, the batch waiting behind the one in flight was dropped, and the last events of a
   * closing primary reached no secondary, unreported.
   */
  close(): void {
    if (this.closed) return;
    if (this.beacon) clearInterval(this.beacon);
    this.beacon = undefined;
    if (this.pending.length > 0) {
      this.inFlight = false;
      this.flush();
    }
    this.closed = true;
    this.endFile?.write(this.latest);
    try {
      // (a secondary it does not reach reads the end file when it learns its primary left)
      this.bus.broadcast(EVENT_NAME, { latest: this.latest, end: true } satisfies EventMessage, { onSent: () => undefined });
    } catch (err) {
      this.log.debug({ err }, 'end of events not relayed');
    }
  }
}
