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
  private readonly departed = new Map<string, AskTotals>();

  /**
   * Reads `group`'s ask rows: a row seen before that is gone, or counts less than it did (its
   * name's row was freed and taken again), adds what it had counted to its name's departed
   * totals. Answers those totals, by name, for names some live actor still holds or some live
   * process still asks.
   */
  update(group: GroupCounters): ReadonlyMap<string, AskTotals> {
    const now = new Map<string, { name: string; totals: AskTotals }>();
    // Names still shown: held by a live actor, or asked by a live process (an actor on another host).
    const shown = new Set<string>();
    for (const p of group.processes) {
      if (p.state !== 'alive') continue;
      for (const row of p.rows) {
        if (row.kind === 'asks') {
          now.set(`${p.pid}\0${row.name}`, { name: row.name, totals: row });
          shown.add(row.name);
        } else if (row.kind === 'actor') shown.add(row.name);
      }
    }
    for (const [key, last] of this.seen) {
      const current = now.get(key);
      if (current !== undefined && current.totals.asks >= last.totals.asks) continue;
      let totals = this.departed.get(last.name);
      if (totals === undefined) this.departed.set(last.name, (totals = emptyAskTotals()));
      addAskTotals(totals, last.totals);
    }
    this.seen = now;
    // An actor that is gone, and no longer asked, ends its series: what was asked of it is no longer shown.
    for (const name of this.departed.keys()) if (!shown.has(name)) this.departed.delete(name);
    return this.departed;
  }
}
