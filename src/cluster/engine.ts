/**
 * The messaging engine under the cluster bridge. The bridge ({@link ClusterTransport}) speaks of
 * subjects, queue groups, reply subjects and headers only; an engine maps them onto a broker.
 * NATS is the engine mpbus ships ({@link NatsEngine}); another broker with subject pub/sub,
 * queue groups and per-message headers could be added behind this interface.
 */
import type { Observable } from 'rxjs';

/** Message headers: a small string map (trace and correlation ids, deadlines, status). */
export type EngineHeaders = Record<string, string>;

/** One message received from the engine. */
export interface EngineMessage {
  subject: string;
  /** Where an answer goes, when the sender wants one. */
  reply?: string;
  data: Uint8Array;
  headers: EngineHeaders;
  /**
   * True when the engine itself reports that nobody listened to a message sent with this
   * message's subject as reply subject (NATS: status 503 "no responders").
   */
  noResponders: boolean;
}

/** Connection state changes the bridge reacts to. */
export type EngineStatus =
  | { type: 'connected'; server: string }
  | { type: 'disconnected'; server: string }
  | { type: 'reconnected'; server: string }
  | { type: 'closed'; error?: string };

/** A live subscription; `close()` ends it. */
export interface EngineSubscription {
  close(): void;
  /**
   * Ends it without losing what is on its way: the server stops sending to it, and messages it
   * had sent before are still handed to the handler (optional: `close()` is used without it).
   */
  drain?(): Promise<void>;
}

/** Options of {@link ClusterEngine.subscribe}. */
export interface SubscribeOptions {
  /** Queue group: each message goes to one subscriber of the group (work sharing). */
  queue?: string | undefined;
}

/** Options of {@link ClusterEngine.publish}. */
export interface PublishOptions {
  reply?: string | undefined;
  headers?: EngineHeaders | undefined;
}

/** What the cluster bridge needs from a broker. */
export interface ClusterEngine {
  /** Short name for logs and docs, e.g. 'nats'. */
  readonly kind: string;
  /** Connects (resolves once connected; keeps reconnecting by itself afterwards). */
  connect(): Promise<void>;
  /** True while a connection to a server is up. */
  readonly connected: boolean;
  /** Connection state changes. */
  readonly status$: Observable<EngineStatus>;
  /** A subject unique to this connection under which replies can be received (`<prefix>.<anything>`). */
  inboxPrefix(): string;
  /** Subscribes; the subscription survives reconnects (the engine re-subscribes). */
  subscribe(subject: string, options: SubscribeOptions, handler: (message: EngineMessage) => void): EngineSubscription;
  /** Publishes without waiting; while disconnected the engine buffers (and may throw when its buffer is full). */
  publish(subject: string, data: Uint8Array, options?: PublishOptions): void;
  /** Sends what is buffered and waits for the server to have it. */
  flush(): Promise<void>;
  /** Closes the connection (after sending what is buffered). */
  close(): Promise<void>;
}
