/**
 * {@link NatsEngine}: the cluster engine over NATS, with the official Node client
 * (`@nats-io/transport-node`, v3). The client is an optional peer dependency of mpbus, loaded on
 * first connect: an application that never joins a cluster needs neither to install nor to load
 * it, and one that does gets a typed error naming the install command when it is missing.
 *
 * What the bridge relies on, and where NATS gives it:
 * - queue groups (`subscribe(subject, { queue })`): each message to one member;
 * - "no responders": a message published with a reply subject that no one subscribes to gets a
 *   status-503 message back at once (the client announces `no_responders` when it connects);
 * - reconnects: the client reconnects forever (by default) and re-subscribes by itself; what is
 *   published while it is away is buffered and sent on reconnect.
 */
import { Subject, type Observable } from 'rxjs';
import type { MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { ErrorCodes, MpBusError } from '../errors.js';
import { logger } from '../log.js';
import { durationMs, integerIn, MAX_DELAY_MS } from '../validation.js';
import type { ClusterEngine, EngineHeaders, EngineMessage, EngineStatus, EngineSubscription, PublishOptions, SubscribeOptions } from './engine.js';

/** Options of {@link NatsEngine}. */
export interface NatsEngineOptions {
  /** NATS server URLs, e.g. `'nats://127.0.0.1:4222'` or several for a NATS cluster. */
  servers: string | string[];
  /** Connection name shown by the server's monitoring (default `mpbus-<pid>`). */
  connectionName?: string | undefined;
  /** Pause between reconnect attempts (default 250 ms). */
  reconnectTimeWaitMs?: number | undefined;
  /** Reconnect attempts before giving up; -1: forever (default). */
  maxReconnectAttempts?: number | undefined;
  /** How long the first connect may take (default 5 000 ms). */
  connectTimeoutMs?: number | undefined;
  /** Client-to-server pings, to notice a dead server on an idle link (default 2 000 ms). */
  pingIntervalMs?: number | undefined;
}

/**
 * Imports the NATS client. Its types stay out of mpbus's declarations (nothing exported names
 * them), so projects without the client type-check against mpbus too.
 */
async function loadNatsClient(): Promise<typeof import('@nats-io/transport-node')> {
  try {
    return await import('@nats-io/transport-node');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'ERR_MODULE_NOT_FOUND' || !e.message.includes('@nats-io/')) throw err;
    throw new MpBusError(
      'CLUSTER_UNAVAILABLE',
      'the cluster bridge needs the NATS client, which is not installed: run `npm install @nats-io/transport-node` in your project (an optional peer dependency of mpbus, see docs/cluster.md)',
      { cause: err },
    );
  }
}

/** {@link NatsEngineOptions} with every default filled in (the connection's name is made at connect). */
type NatsSettings = Required<Omit<NatsEngineOptions, 'connectionName'>> & Pick<NatsEngineOptions, 'connectionName'>;

/**
 * Shortest ping interval accepted: each ping wakes the process, and a client that pings every
 * few ms (or, with a negative interval, at once, over and over: half a core in a trial) is busy
 * while idle. A dead server is still noticed within two intervals.
 */
const PING_MIN_MS = 100;

/**
 * {@link NatsEngineOptions} checked and completed with their defaults (`cluster.nats.*` and
 * `cluster.servers`): called before DPDK starts, so a bad value starts nothing. The client
 * would take negative or zero values and misbehave with them (a negative ping interval pings
 * without pause).
 */
export function natsSettings(options: NatsEngineOptions): NatsSettings {
  const servers = ([] as unknown[]).concat(options.servers);
  if (servers.length === 0 || servers.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new MpBusError(
      'INVALID_OPTION',
      `cluster.servers must name at least one NATS server, e.g. 'nats://127.0.0.1:4222' (got ${describe(options.servers)})`,
    );
  }
  const { connectionName } = options;
  if (connectionName !== undefined && (typeof connectionName !== 'string' || connectionName.length === 0)) {
    throw new MpBusError('INVALID_OPTION', `cluster.nats.connectionName must be a non-empty string (got ${describe(connectionName)})`);
  }
  return {
    servers: options.servers,
    connectionName,
    reconnectTimeWaitMs: durationMs(options.reconnectTimeWaitMs ?? 250, 'cluster.nats.reconnectTimeWaitMs', 0),
    maxReconnectAttempts: integerIn(options.maxReconnectAttempts ?? -1, 'cluster.nats.maxReconnectAttempts (-1: forever)', -1, MAX_DELAY_MS),
    connectTimeoutMs: durationMs(options.connectTimeoutMs ?? 5000, 'cluster.nats.connectTimeoutMs', 1),
    pingIntervalMs: pingInterval(options.pingIntervalMs ?? 2000),
  };
}

function pingInterval(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < PING_MIN_MS || value > MAX_DELAY_MS) {
    throw new MpBusError(
      'INVALID_OPTION',
      `cluster.nats.pingIntervalMs must be a number of milliseconds from ${PING_MIN_MS} (pings more often keep an idle process busy) to ${MAX_DELAY_MS}, got ${describe(value)}`,
    );
  }
  return value;
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? `[${value.map(describe).join(', ')}]` : String(value);
}

export class NatsEngine implements ClusterEngine {
  readonly kind = 'nats';
  readonly status$: Observable<EngineStatus>;
  private readonly status = new Subject<EngineStatus>();
  private nc: NatsConnection | undefined;
  private headersOf: (() => MsgHdrs) | undefined;
  private isUp = false;
  private readonly log = logger('cluster-nats');

  private readonly options: NatsSettings;

  constructor(options: NatsEngineOptions) {
    this.status$ = this.status.asObservable();
    this.options = natsSettings(options);
  }

  get connected(): boolean {
    return this.isUp;
  }

  async connect(): Promise<void> {
    if (this.nc) return;
    const nats = await loadNatsClient();
    this.headersOf = () => nats.headers();
    const o = this.options;
    try {
      this.nc = await nats.connect({
        servers: o.servers,
        name: o.connectionName ?? `mpbus-${process.pid}`,
        reconnect: true,
        maxReconnectAttempts: o.maxReconnectAttempts,
        reconnectTimeWait: o.reconnectTimeWaitMs,
        reconnectJitter: 50,
        timeout: o.connectTimeoutMs,
        pingInterval: o.pingIntervalMs,
        maxPingOut: 2,
      });
    } catch (err) {
      throw new MpBusError(
        'CLUSTER_UNAVAILABLE',
        `cannot connect to NATS at ${String(o.servers)}: ${(err as Error).message}; start nats-server (e.g. \`nats-server -a 127.0.0.1 -p 4222\`) or fix cluster.servers`,
        { cause: err },
      );
    }
    this.isUp = true;
    const nc = this.nc;
    this.status.next({ type: 'connected', server: nc.getServer() });
    void this.followStatus(nc);
    void nc.closed().then((err) => {
      this.isUp = false;
      this.status.next(err ? { type: 'closed', error: err.message } : { type: 'closed' });
      this.status.complete();
    });
  }

  private async followStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.isUp = false;
        this.log.warn({ server: s.server }, 'disconnected from NATS; reconnecting');
        this.status.next({ type: 'disconnected', server: s.server });
      } else if (s.type === 'reconnect') {
        this.isUp = true;
        this.log.info({ server: s.server }, 'reconnected to NATS');
        this.status.next({ type: 'reconnected', server: s.server });
      }
    }
  }

  private connection(): NatsConnection {
    if (!this.nc) throw new MpBusError('CLUSTER_UNAVAILABLE', 'the NATS engine is not connected yet: await connect() first');
    return this.nc;
  }

  inboxPrefix(): string {
    const nc = this.connection() as NatsConnection & { options?: { inboxPrefix?: string } };
    return `${nc.options?.inboxPrefix ?? '_INBOX'}.mpbus.${process.pid}.${Math.random().toString(36).slice(2, 10)}`;
  }

  subscribe(subject: string, options: SubscribeOptions, handler: (message: EngineMessage) => void): EngineSubscription {
    const sub = this.connection().subscribe(subject, {
      ...(options.queue !== undefined ? { queue: options.queue } : {}),
      callback: (err, msg) => {
        if (err) {
          this.log.warn({ err, subject }, 'subscription error');
          return;
        }
        const headers: EngineHeaders = {};
        const h = msg.headers;
        if (h) for (const k of h.keys()) headers[k] = h.get(k);
        const message: EngineMessage = { subject: msg.subject, data: msg.data, headers, noResponders: h?.code === 503 && msg.data.length === 0 };
        if (msg.reply) message.reply = msg.reply;
        handler(message);
      },
    });
    return { close: () => sub.unsubscribe(), drain: () => sub.drain() };
  }

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): void {
    const nc = this.connection();
    let headers: MsgHdrs | undefined;
    if (options.headers) {
      headers = this.headersOf!();
      for (const [k, v] of Object.entries(options.headers)) headers.set(k, v);
    }
    try {
      nc.publish(subject, data, {
        ...(options.reply !== undefined ? { reply: options.reply } : {}),
        ...(headers ? { headers } : {}),
      });
    } catch (err) {
      // A message over the server's max_payload (1 MiB by default) is refused by the client:
      // typed, so that it is not taken for a connection that is down.
      const max = nc.info?.max_payload;
      if (max !== undefined && data.length + 512 > max && /max_payload/.test((err as Error).message)) {
        throw new MpBusError(
          ErrorCodes.messageTooLarge,
          `a message of ${data.length} bytes is more than the NATS server takes (max_payload ${max} bytes, headers included): send less to other hosts, or raise max_payload in the servers' configuration`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  async flush(): Promise<void> {
    await this.connection().flush();
  }

  async close(): Promise<void> {
    const nc = this.nc;
    if (!nc || nc.isClosed()) return;
    // Send what is buffered when a server is there to take it, but never wait for one to come back.
    if (this.isUp) await Promise.race([nc.flush().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())]);
    await nc.close();
  }
}
