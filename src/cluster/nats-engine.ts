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
import type { ConnectionOptions, MsgHdrs, NatsConnection } from '@nats-io/transport-node';
import { ErrorCodes, MpBusError } from '../errors.js';
import { logger } from '../log.js';
import { natsSettings, type NatsEngineOptions, type NatsSettings } from './nats-settings.js';
import type { ClusterEngine, EngineHeaders, EngineMessage, EngineStatus, EngineSubscription, PublishOptions, SubscribeOptions } from './engine.js';

export type { NatsAuthenticator, NatsEngineOptions, NatsTlsOptions } from './nats-settings.js';

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

/** What to do about a failed first connect, by what the client said. */
function connectFix(err: Error, o: NatsSettings): string {
  const text = `${err.name} ${err.message}`;
  if (/authori[sz]ation|authenticat/i.test(text)) {
    return 'give the credentials the servers require (cluster.nats.user and pass, token or authenticator, or user:pass@ in the URL), or check them';
  }
  if (/does not support 'tls'|not available on this server/i.test(text)) {
    return 'this server offers no TLS: use one that does (nats-server --tls ...), or, on a trusted network, write nats:// and leave cluster.nats.tls out';
  }
  if (/tls|certificate|self.signed|altname|handshake/i.test(text)) {
    return `${o.tls === undefined ? 'this server requires TLS: set cluster.nats.tls (or write tls://) and ' : ''}give the CA that signed its certificate as cluster.nats.tls.caFile, and name the server by a host name its certificate carries (the client checks a server given by IP address against "localhost")`;
  }
  return 'start nats-server (e.g. `nats-server -a 127.0.0.1 -p 4222`) or fix cluster.servers';
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
        ...(o.tls !== undefined ? { tls: o.tls } : {}),
        ...(o.auth as Pick<ConnectionOptions, 'user' | 'pass' | 'token' | 'authenticator'>),
      });
    } catch (err) {
      throw new MpBusError('CLUSTER_UNAVAILABLE', `cannot connect to NATS at ${o.shown}: ${(err as Error).message}; ${connectFix(err as Error, o)}`, {
        cause: err,
      });
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
