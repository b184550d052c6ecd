/**
 * The options of the NATS engine ({@link NatsEngineOptions}: `cluster.servers` and
 * `cluster.nats.*`) checked and completed before DPDK starts, so a bad value starts nothing: the
 * servers' addresses taken apart (scheme, credentials, host and port), TLS, credentials, and the
 * client's tuning, which it would take negative or zero and misbehave with.
 */
import { existsSync } from 'node:fs';
import { MpBusError } from '../errors.js';
import { durationMs, integerIn, MAX_DELAY_MS } from '../validation.js';

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
  /**
   * TLS to the servers: `true` (the servers' certificates checked against the system's CAs), or
   * the CA, client certificate and key as files or PEM text. A `tls://` URL in `servers` asks
   * for TLS too. Once asked for, a server that does not offer TLS is refused, never used in
   * plaintext.
   */
  tls?: boolean | NatsTlsOptions | undefined;
  /** The user the servers require (with `pass`); also taken from a `nats://user:pass@host` URL. */
  user?: string | undefined;
  /** The password of `user`. */
  pass?: string | undefined;
  /** The token the servers require; also taken from a `nats://token@host` URL. */
  token?: string | undefined;
  /**
   * Other credentials (nkeys, a JWT creds file): an authenticator made with the NATS client's
   * own functions (`credsAuthenticator`, `nkeyAuthenticator`, ...), or a list of them.
   */
  authenticator?: NatsAuthenticator | NatsAuthenticator[] | undefined;
}

/** TLS settings of {@link NatsEngineOptions.tls} (the NATS client's own, PEM text or file paths). */
export interface NatsTlsOptions {
  /** CA certificates that sign the servers' certificates (default: the system's). */
  caFile?: string | undefined;
  ca?: string | undefined;
  /** A client certificate and its key, for servers that verify clients. */
  certFile?: string | undefined;
  cert?: string | undefined;
  keyFile?: string | undefined;
  key?: string | undefined;
  /** TLS before the NATS greeting, for servers configured with `handshake_first`. */
  handshakeFirst?: boolean | undefined;
}

/** What the NATS client's authenticator functions make (`(nonce) => credentials`); passed to it as given. */
export type NatsAuthenticator = (nonce?: string) => unknown;

/** {@link NatsEngineOptions} checked, with every default filled in (the connection's name is made at connect). */
export interface NatsSettings {
  /** `host:port` of each server, as the client takes them (no scheme, no credentials). */
  servers: string[];
  /** The servers as error messages and logs show them (credentials left out). */
  shown: string;
  connectionName: string | undefined;
  reconnectTimeWaitMs: number;
  maxReconnectAttempts: number;
  connectTimeoutMs: number;
  pingIntervalMs: number;
  /** TLS asked for (an option or a `tls://` URL): the client's settings, else undefined. */
  tls: NatsTlsOptions | undefined;
  /** The client's credential options (user and pass, token, authenticator), as far as given. */
  auth: Pick<NatsEngineOptions, 'user' | 'pass' | 'token' | 'authenticator'>;
}

/** One entry of `cluster.servers`, taken apart. */
interface ServerAddress {
  hostPort: string;
  tls: boolean;
  user?: string;
  pass?: string;
}

const TLS_KEYS = ['caFile', 'ca', 'certFile', 'cert', 'keyFile', 'key', 'handshakeFirst'] as const;

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
  const addresses = (servers as string[]).map(serverAddress);
  const { connectionName } = options;
  if (connectionName !== undefined && (typeof connectionName !== 'string' || connectionName.length === 0)) {
    throw new MpBusError('INVALID_OPTION', `cluster.nats.connectionName must be a non-empty string (got ${describe(connectionName)})`);
  }
  return {
    servers: addresses.map((a) => a.hostPort),
    shown: addresses.map((a) => `${a.tls ? 'tls' : 'nats'}://${a.hostPort}`).join(', '),
    connectionName,
    reconnectTimeWaitMs: durationMs(options.reconnectTimeWaitMs ?? 250, 'cluster.nats.reconnectTimeWaitMs', 0),
    maxReconnectAttempts: integerIn(options.maxReconnectAttempts ?? -1, 'cluster.nats.maxReconnectAttempts (-1: forever)', -1, MAX_DELAY_MS),
    connectTimeoutMs: durationMs(options.connectTimeoutMs ?? 5000, 'cluster.nats.connectTimeoutMs', 1),
    pingIntervalMs: pingInterval(options.pingIntervalMs ?? 2000),
    tls: tlsSettings(options.tls, addresses),
    auth: authSettings(options, addresses),
  };
}

/**
 * `nats://host:port`, `tls://host:port` or `host[:port]`, with `user:pass@` or `token@` before the
 * host. The client itself drops any scheme (a `tls://` URL alone connected in plaintext) and
 * any credentials in the URL, and took a malformed address only to fail once DPDK had started.
 */
function serverAddress(entry: string): ServerAddress {
  const text = entry.trim();
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  const kind = scheme ? scheme[1]!.toLowerCase() : 'nats';
  if (kind !== 'nats' && kind !== 'tls') {
    throw new MpBusError(
      'INVALID_OPTION',
      `cluster.servers: ${JSON.stringify(redacted(entry))} uses ${kind}://: write nats://host:port, or tls://host:port for a server that requires TLS`,
    );
  }
  const rest = scheme ? text.slice(scheme[0].length) : text;
  let url: URL | undefined;
  try {
    url = new URL(`nats://${rest}`);
  } catch {
    url = undefined;
  }
  const port = url === undefined || url.port === '' ? 4222 : Number(url.port);
  if (url === undefined || url.hostname === '' || (url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '' || port < 1) {
    throw new MpBusError(
      'INVALID_OPTION',
      `cluster.servers: ${JSON.stringify(redacted(entry))} is not a NATS server address: write it as nats://host:port (a port from 1 to 65535; 4222 when left out)`,
    );
  }
  const address: ServerAddress = { hostPort: `${url.hostname}:${port}`, tls: kind === 'tls' };
  try {
    if (url.username !== '') address.user = decodeURIComponent(url.username);
    if (url.password !== '') address.pass = decodeURIComponent(url.password);
  } catch {
    throw new MpBusError(
      'INVALID_OPTION',
      `cluster.servers: ${JSON.stringify(redacted(entry))} has credentials that are not well percent-encoded (write %40 for @, %3A for :)`,
    );
  }
  return address;
}

/** `entry` with the credentials of its URL replaced, for messages. */
function redacted(entry: string): string {
  return entry.replace(/^([^/@]*:\/\/)?[^/@]*@/, (_, scheme: string | undefined) => `${scheme ?? ''}***@`);
}

function tlsSettings(option: unknown, addresses: ServerAddress[]): NatsTlsOptions | undefined {
  const byUrl = addresses.some((a) => a.tls);
  if (option === undefined || option === false) {
    if (option === false && byUrl) {
      throw new MpBusError('INVALID_OPTION', 'cluster.nats.tls is false, but cluster.servers has a tls:// address: leave tls out, or write nats://');
    }
    return byUrl ? {} : undefined;
  }
  if (option === true) return {};
  if (option === null || typeof option !== 'object' || Array.isArray(option)) {
    throw new MpBusError('INVALID_OPTION', `cluster.nats.tls must be true, false or an object of ${TLS_KEYS.join(', ')} (got ${describe(option)})`);
  }
  const tls: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(option)) {
    if (value === undefined) continue;
    if (!(TLS_KEYS as readonly string[]).includes(key)) {
      throw new MpBusError('INVALID_OPTION', `cluster.nats.tls has no option '${key}': it takes ${TLS_KEYS.join(', ')}`);
    }
    if (key === 'handshakeFirst' ? typeof value !== 'boolean' : typeof value !== 'string' || value.length === 0) {
      const want = key === 'handshakeFirst' ? 'true or false' : key.endsWith('File') ? 'the path of a PEM file' : 'PEM text';
      throw new MpBusError('INVALID_OPTION', `cluster.nats.tls.${key} must be ${want} (got ${describe(value)})`);
    }
    if (key.endsWith('File') && !existsSync(value as string)) {
      throw new MpBusError('INVALID_OPTION', `cluster.nats.tls.${key}: no file at ${JSON.stringify(value)}`);
    }
    tls[key] = value;
  }
  if ((tls['certFile'] ?? tls['cert']) !== undefined && (tls['keyFile'] ?? tls['key']) === undefined) {
    throw new MpBusError('INVALID_OPTION', 'cluster.nats.tls has a client certificate without its key: give keyFile (or key) too');
  }
  return tls;
}

function authSettings(options: NatsEngineOptions, addresses: ServerAddress[]): NatsSettings['auth'] {
  for (const key of ['user', 'pass', 'token'] as const) {
    const value = options[key];
    if (value !== undefined && (typeof value !== 'string' || value.length === 0)) {
      throw new MpBusError('INVALID_OPTION', `cluster.nats.${key} must be a non-empty string (got a ${value === null ? 'null' : typeof value})`);
    }
  }
  const { authenticator } = options;
  if (
    authenticator !== undefined &&
    !(typeof authenticator === 'function' || (Array.isArray(authenticator) && authenticator.every((a) => typeof a === 'function')))
  ) {
    throw new MpBusError(
      'INVALID_OPTION',
      'cluster.nats.authenticator must be a function made by the NATS client (credsAuthenticator(...), nkeyAuthenticator(...)...) or a list of them',
    );
  }
  // Credentials in the URLs: user:pass@ as user and password, a lone name@ as a token (as NATS's other clients read them).
  const inUrls = new Set(addresses.filter((a) => a.user !== undefined).map((a) => `${a.user}\u0000${a.pass ?? ''}`));
  if (inUrls.size > 1)
    throw new MpBusError(
      'INVALID_OPTION',
      'cluster.servers give different credentials in different URLs: give them once, as cluster.nats.user and pass (or token)',
    );
  const fromUrl = addresses.find((a) => a.user !== undefined);
  const auth: NatsSettings['auth'] = {};
  if (options.user !== undefined) auth.user = options.user;
  if (options.pass !== undefined) auth.pass = options.pass;
  if (options.token !== undefined) auth.token = options.token;
  if (fromUrl !== undefined) {
    if (auth.user !== undefined || auth.token !== undefined) {
      throw new MpBusError('INVALID_OPTION', 'cluster.servers has credentials in a URL and cluster.nats has them too: give them in one place');
    }
    if (fromUrl.pass !== undefined) {
      auth.user = fromUrl.user!;
      auth.pass = fromUrl.pass;
    } else auth.token = fromUrl.user!;
  }
  if (auth.pass !== undefined && auth.user === undefined) throw new MpBusError('INVALID_OPTION', 'cluster.nats.pass needs cluster.nats.user');
  if (auth.user !== undefined && auth.pass === undefined)
    throw new MpBusError('INVALID_OPTION', 'cluster.nats.user needs cluster.nats.pass (a server that takes a name alone takes it as a token)');
  if (auth.token !== undefined && auth.user !== undefined)
    throw new MpBusError('INVALID_OPTION', 'cluster.nats.token and user/pass exclude each other: give one of them');
  if (authenticator !== undefined) auth.authenticator = authenticator;
  return auth;
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
