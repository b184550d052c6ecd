/**
 * {@link DepartedAsks}: the ask counts of rows that went away, kept so that the ask counters an
 * exporter reads only go up. Asks are counted in the asking process's slot (src/actors/counters.ts),
 * so when an asker leaves the group, or frees its row of a name, the totals of the actor it
 * asked would drop by what it had counted: Prometheus reads any drop of a counter as a reset
 * (a false spike in `rate()`). Kept while the exporter runs, for actors that are still there.
 */
import { addAskTotals, emptyAskTotals, type AskTotals, type GroupCounters } from './group-counters.js';

export class DepartedAsks {
  /** The last ask row seen of each live process, by `pid` and name. */
  private seen = new Map<string, { name: string; totals: AskTotals }>();
  /** What askers that left had counted, by name, with the pid of the actor they asked (-1: none of the group). */
  private readonly departed = new Map<string, { holder: number; totals: AskTotals }>();
  /** The pid of the actor holding each name at the last read. */
  private holders = new Map<string, number>();

  /**
   * Reads `group`'s ask rows: a row seen before that is gone, or counts less than it did (its
   * name's row was freed and taken again), adds what it had counted to its name's departed
   * totals. Answers those totals, by name, for names held by the same actor as when they were
   * counted (an actor started anew in another process, a restarted pool child, is a series of
   * its own: it started with its predecessor's asks), or, for an actor on another host, while
   * some live process still asks it.
   */
  update(group: GroupCounters): ReadonlyMap<string, AskTotals> {
    const now = new Map<string, { name: string; totals: AskTotals }>();
    const asked = new Set<string>();
    const holders = new Map<string, number>();
    for (const p of group.processes) {
      if (p.state !== 'alive') continue;
      for (const row of p.rows) {
        if (row.kind === 'asks') {
          now.set(`${p.pid}\0${row.name}`, { name: row.name, totals: row });
          asked.add(row.name);
        } else if (row.kind === 'actor') holders.set(row.name, p.pid);
      }
    }
    for (const [key, last] of this.seen) {
      const current = now.get(key);
      if (current !== undefined && current.totals.asks >= last.totals.asks) continue;
      // counted of the actor that held the name when last read (a successor may hold it by now)
      const holder = this.holders.get(last.name) ?? holders.get(last.name) ?? -1;
      let entry = this.departed.get(last.name);
      if (entry === undefined || entry.holder !== holder) this.departed.set(last.name, (entry = { holder, totals: emptyAskTotals() }));
      addAskTotals(entry.totals, last.totals);
    }
    this.seen = now;
    this.holders = holders;
    const shown = new Map<string, AskTotals>();
    for (const [name, entry] of this.departed) {
      const holder = holders.get(name);
      // The actor gone, or another in its place, and (for one on another host) no longer asked: the series ends.
      if (holder !== undefined ? holder === entry.holder : entry.holder === -1 && asked.has(name)) shown.set(name, entry.totals);
      else this.departed.delete(name);
    }
    return shown;
  }
}
