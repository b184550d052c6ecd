/**
 * Prometheus exposition of a group's counters through prom-client: {@link groupMetrics} returns
 * a `Registry` whose metrics are read from the group's counters file at each scrape (one read
 * per scrape, for every process of the group: any member, or a process outside the group, can
 * serve them); {@link groupMetricsText} returns the text at once. Names and labels follow
 * Prometheus conventions: `mpbus_` prefix, base units (seconds, bytes), `_total` counters.
 *
 * ```ts
 * const registry = groupMetrics(); // the group this process runs in
 * http.createServer(async (_, res) => res.end(await registry.metrics())).listen(9464);
 * ```
 */
import { Registry, type MetricObjectWithValues, type MetricType, type MetricValue, type MetricValueWithName } from 'prom-client';

/** Prometheus metric types used here (prom-client's `MetricType` enum exists in its typings only). */
type Kind = 'counter' | 'gauge' | 'histogram';
import { MpBusError, ErrorCodes } from '../errors.js';
import { checkedOptions, filePrefix as checkedPrefix, optionKeys } from '../validation.js';
import { Runtime } from '../runtime/runtime.js';
import { bucketUpperMs } from '../runtime/counters-layout.js';
import { surveyGroup } from '../runtime/group-survey.js';
import {
  groupAskViews,
  readGroupCounters,
  type ActorView,
  type GroupCounters,
  type ProcessCounters,
  type RemoteAskView,
  type RowCounters,
} from './group-counters.js';
import { DepartedAsks } from './departed-asks.js';

/** Options of {@link groupMetrics}. */
export interface GroupMetricsOptions {
  /** The group's file prefix (default: the group of this process's runtime). */
  filePrefix?: string | undefined;
  /** Registers the metrics in this registry (default: a new one), e.g. beside `collectDefaultMetrics`. */
  registry?: Registry | undefined;
}

const GROUP_METRICS_OPTION_KEYS = optionKeys<GroupMetricsOptions>({ filePrefix: true, registry: true });

/** Upper bounds (seconds) of the ask duration histogram's `le` buckets. */
export const ASK_DURATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Snapshot {
  /** False when no group of that prefix runs on this host (no counters file). */
  up: boolean;
  group: GroupCounters;
  live: ProcessCounters[];
  actors: ActorView[];
  /** Asks to names no actor of the group holds (actors on other hosts). */
  remote: RemoteAskView[];
}

type Values = (s: Snapshot) => MetricValue<string>[];

/** A metric whose values are computed from the snapshot of the scrape (prom-client's metric shape). */
class SnapshotMetric {
  readonly aggregator = 'sum' as const;
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: Kind,
    private readonly snapshot: () => Snapshot,
    private readonly values: Values,
  ) {}

  async get(): Promise<MetricObjectWithValues<MetricValue<string>>> {
    const type = this.type as unknown as MetricType;
    return { name: this.name, help: this.help, type, aggregator: this.aggregator, collect: () => undefined, values: this.values(this.snapshot()) };
  }

  reset(): void {}
}

/**
 * A prom-client registry exposing a group's processes and actors (see docs/observability.md for
 * every metric). `registry.metrics()` reads the group's counters once per call.
 */
export function groupMetrics(options: GroupMetricsOptions = {}): Registry {
  checkedOptions(options, GROUP_METRICS_OPTION_KEYS, 'groupMetrics options');
  const given = options.filePrefix ?? Runtime.current()?.filePrefix;
  if (given === undefined) throw new MpBusError(ErrorCodes.invalidOption, 'groupMetrics: give filePrefix, or start a runtime in this process first');
  // A group's name, never a path: a typo would otherwise read as a group that is down.
  const filePrefix = checkedPrefix(given, 'groupMetrics filePrefix');
  const registry = options.registry ?? new Registry();
  // One read serves every metric of a scrape (they are collected in the same turn).
  let cached: { at: number; snapshot: Snapshot } | undefined;
  // Asks counted by processes that left stay counted: the ask counters never go down.
  const departed = new DepartedAsks();
  const snapshot = (): Snapshot => {
    const now = Date.now();
    if (cached && now - cached.at < 100) return cached.snapshot;
    const read = readGroupCounters(filePrefix);
    const group = read ?? { prefix: filePrefix, readAt: now, processes: [] };
    const { actors, remote } = groupAskViews(group, departed.update(group));
    const live = group.processes.filter((p) => p.state === 'alive');
    // A group whose processes were all killed keeps its counters file: up only while one of its
    // mpbus processes lives, or a process of it that writes no counters (a C primary).
    const up = live.length > 0 || (read !== undefined && surveyGroup(filePrefix).state === 'alive');
    cached = { at: now, snapshot: { up, group, live, actors, remote } };
    return cached.snapshot;
  };
  const g = { group: filePrefix };
  const perProcess =
    (value: (p: ProcessCounters) => number): Values =>
    (s) =>
      s.live.map((p) => ({ value: value(p), labels: { ...g, pid: p.pid } }));
  const perActor =
    (value: (a: ActorView) => number): Values =>
    (s) =>
      s.actors.map((a) => ({ value: value(a), labels: { ...g, actor: a.name, pid: a.pid } }));
  const perRemote =
    (value: (a: RemoteAskView) => number): Values =>
    (s) =>
      s.remote.map((a) => ({ value: value(a), labels: { ...g, actor: a.name } }));
  const perMailbox =
    (value: (b: RowCounters) => number): Values =>
    (s) =>
      s.live.flatMap((p) => p.rows.filter((r) => r.kind === 'mailbox').map((r) => ({ value: value(r), labels: { ...g, mailbox: r.name, pid: p.pid } })));
  const metrics: Array<[string, string, Kind, Values]> = [
    [
      'mpbus_group_up',
      'Whether the group runs on this host (1) or not (0: no process of it has started, or the last one left): the other metrics are empty then.',
      'gauge',
      (s) => [{ value: s.up ? 1 : 0, labels: g }],
    ],
    [
      'mpbus_process_info',
      'A process of the group (value 1): its role, lcore and command.',
      'gauge',
      (s) => s.live.map((p) => ({ value: 1, labels: { ...g, pid: p.pid, role: p.role, lcore: p.lcore, command: p.command } })),
    ],
    ['mpbus_process_start_time_seconds', 'When the process started, seconds since the epoch.', 'gauge', perProcess((p) => p.startedAt / 1000)],
    [
      'mpbus_process_cpu_seconds_total',
      'CPU time the process used, by mode (user, system).',
      'counter',
      (s) =>
        s.live.flatMap((p) => [
          { value: p.cpuUserUs / 1e6, labels: { ...g, pid: p.pid, mode: 'user' } },
          { value: p.cpuSystemUs / 1e6, labels: { ...g, pid: p.pid, mode: 'system' } },
        ]),
    ],
    ['mpbus_process_resident_memory_bytes', 'Resident memory of the process (hugepages it maps included).', 'gauge', perProcess((p) => p.rssBytes)],
    ['mpbus_process_heap_used_bytes', "V8 heap the process's JavaScript uses.", 'gauge', perProcess((p) => p.heapUsedBytes)],
    ['mpbus_process_dead_letters_total', "Messages no actor handled, in the process's actor systems.", 'counter', perProcess((p) => p.deadLetters)],
    [
      'mpbus_process_counter_rows_dropped_total',
      'Rows (actors, mailboxes, names asked) the process could not count: its slot of 512 rows was full. Those are missing from the other metrics.',
      'counter',
      perProcess((p) => p.rowsDropped),
    ],
    ['mpbus_actor_messages_received_total', 'Messages that reached the actor.', 'counter', perActor((a) => a.received)],
    ['mpbus_actor_messages_processed_total', 'Messages the actor handled without error.', 'counter', perActor((a) => a.processed)],
    ['mpbus_actor_messages_failed_total', 'Messages whose handler threw.', 'counter', perActor((a) => a.failed)],
    [
      'mpbus_actor_dead_letters_total',
      'Messages the actor never handled (no handler, or stopped with them queued).',
      'counter',
      perActor((a) => a.deadLettered),
    ],
    ['mpbus_actor_restarts_total', 'Times supervision restarted the actor.', 'counter', perActor((a) => a.restarts)],
    ['mpbus_actor_mailbox_depth', 'Messages waiting for the actor (sampled every 500 ms).', 'gauge', perActor((a) => a.depth)],
    ['mpbus_actor_asks_total', 'Asks to the actor answered or failed, from every process of the group.', 'counter', perActor((a) => a.asks)],
    ['mpbus_actor_ask_failures_total', 'Asks to the actor that failed or timed out.', 'counter', perActor((a) => a.askFailed)],
    ['mpbus_actor_ask_timeouts_total', 'Asks to the actor that timed out.', 'counter', perActor((a) => a.askTimeouts)],
    ['mpbus_mailbox_depth', 'Messages sent to the mailbox and not yet handled (sampled every 500 ms).', 'gauge', perMailbox((b) => b.depth)],
    ['mpbus_mailbox_capacity', 'Messages the mailbox accepts before senders see it full.', 'gauge', perMailbox((b) => b.capacity)],
    [
      'mpbus_actor_ask_duration_seconds',
      'Ask round trips to the actor (timeouts included), as the askers measured them: every ask up to 256 per asker, then one in 32 counted 32 times.',
      'histogram',
      (s) => s.actors.flatMap((a) => askHistogram('mpbus_actor_ask_duration_seconds', a, { ...g, actor: a.name, pid: a.pid })),
    ],
    [
      'mpbus_remote_asks_total',
      "Asks the group's processes made to an actor no process of the group holds (on another host of its cluster), answered or failed.",
      'counter',
      perRemote((a) => a.asks),
    ],
    ['mpbus_remote_ask_failures_total', 'Asks to the actor on another host that failed or timed out.', 'counter', perRemote((a) => a.askFailed)],
    ['mpbus_remote_ask_timeouts_total', 'Asks to the actor on another host that timed out.', 'counter', perRemote((a) => a.askTimeouts)],
    [
      'mpbus_remote_ask_duration_seconds',
      "Ask round trips to the actor on another host (timeouts included), as the group's askers measured them, sampled as mpbus_actor_ask_duration_seconds.",
      'histogram',
      (s) => s.remote.flatMap((a) => askHistogram('mpbus_remote_ask_duration_seconds', a, { ...g, actor: a.name })),
    ],
  ];
  if (registry.getSingleMetric('mpbus_group_up')) {
    throw new MpBusError(
      ErrorCodes.invalidOption,
      `groupMetrics: this registry has a group's metrics already (prom-client takes each metric name once): give group '${filePrefix}' a registry of its own, and serve each on a path of its own`,
    );
  }
  for (const [name, help, type, values] of metrics) registry.registerMetric(new SnapshotMetric(name, help, type, snapshot, values) as never);
  return registry;
}

/** The Prometheus text exposition of a group's counters now (see {@link groupMetrics}). */
export function groupMetricsText(options: Omit<GroupMetricsOptions, 'registry'> = {}): Promise<string> {
  return groupMetrics(options).metrics();
}

/** An actor's ask histogram as `_bucket` (cumulative, by `le`), `_sum` and `_count` values of metric `name`. */
function askHistogram(name: string, a: RemoteAskView, labels: Record<string, string | number>): MetricValueWithName<string>[] {
  const cumulative = ASK_DURATION_BUCKETS.map(() => 0);
  let count = 0;
  a.histogram.forEach((n, bucket) => {
    if (n === 0) return;
    count += n;
    const upper = bucketUpperMs(bucket) / 1000;
    ASK_DURATION_BUCKETS.forEach((le, i) => {
      if (upper <= le) cumulative[i]! += n;
    });
  });
  return [
    ...ASK_DURATION_BUCKETS.map((le, i) => ({ metricName: `${name}_bucket`, value: cumulative[i]!, labels: { ...labels, le } })),
    { metricName: `${name}_bucket`, value: count, labels: { ...labels, le: '+Inf' } },
    { metricName: `${name}_sum`, value: a.askLatencySumMs / 1000, labels },
    { metricName: `${name}_count`, value: count, labels },
  ];
}
