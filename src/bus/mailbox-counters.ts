/**
 * The mailboxes' rows in the process's shared counters (src/runtime/counters.ts): one row per
 * open mailbox of this process, its depth and capacity written at each sample, freed when it
 * closes. Read by `mpbus ps`/`top`, `/mpbus/mailboxes` and the Prometheus exposition.
 */
import { processCounters } from '../runtime/counters.js';
import { R } from '../runtime/counters-layout.js';

/** What a row needs of a mailbox. */
interface Counted {
  readonly name: string;
  readonly capacity: number;
  readonly depth: number;
  readonly closed: boolean;
}

/** Counts the mailboxes `boxes()` returns at each sample; returns the function that stops it. */
export function countMailboxes(boxes: () => Iterable<Counted>): () => void {
  const table = processCounters();
  const rows = new Map<string, Float64Array>();
  const stopSampling = table.addGauges(() => {
    const open = new Set<string>();
    for (const box of boxes()) {
      if (box.closed) continue;
      open.add(box.name);
      let row = rows.get(box.name);
      if (!row) rows.set(box.name, (row = table.row('mailbox', box.name)));
      row[R.depth] = box.depth;
      row[R.capacity] = box.capacity;
    }
    for (const [name, row] of rows) {
      if (open.has(name)) continue;
      table.release('mailbox', name, row);
      rows.delete(name);
    }
  });
  return () => {
    stopSampling();
    for (const [name, row] of rows) table.release('mailbox', name, row);
    rows.clear();
  };
}
