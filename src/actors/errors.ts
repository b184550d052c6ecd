/**
 * Typed errors of the actor system. Each is an {@link MpBusError} with a stable `code`, so callers
 * can branch on `err.code` or on the class (`err instanceof AskTimeoutError`).
 */
import { inspect } from 'node:util';
import { describeThrown, ErrorCodes, isTooLarge, MpBusError } from '../errors.js';
import { checkValue } from '../bus/value-codec.js';
import type { WireError } from './transport.js';

/** Codes the actor system raises. */
export const ActorErrorCodes = {
  /** No answer within the ask's timeout ({@link AskTimeoutError}). */
  askTimeout: 'ASK_TIMEOUT',
  /** The ask's `signal` aborted first ({@link AskAbortedError}). */
  askAborted: 'ASK_ABORTED',
  /** No actor holds the name, in this group or (with a cluster) on another host. */
  actorNotFound: 'ACTOR_NOT_FOUND',
  /** The actor stopped (or its process died) before it answered. */
  actorStopped: 'ACTOR_STOPPED',
  /** The system (the asker's or the actor's) closed before the answer came. */
  systemClosed: 'SYSTEM_CLOSED',
  /** The actor has no handler for the action. */
  noHandler: 'NO_HANDLER',
  /** Another actor holds the name already. */
  nameTaken: 'ACTOR_NAME_TAKEN',
  /** A handler threw something that is not an error with a code of its own ({@link ActorHandlerError}). */
  handlerFailed: 'HANDLER_FAILED',
  /** A bad spawn: an empty or reserved name, handlers that are not functions, a class its container cannot make. */
  invalidActor: 'INVALID_ACTOR',
  /** The actor's `preStart` threw or rejected when it was spawned: the spawn failed (`cause` is what it threw). */
  startFailed: 'ACTOR_START_FAILED',
  /** Not raised by actors (their sends wait for room in a full mailbox); kept for code that compares with it. */
  mailboxFull: 'MAILBOX_FULL',
  /** A router has no worker to give the message to. */
  noWorkers: 'NO_WORKERS',
  /** A consistent-hash router's `key` function threw, or gave no string (nor number) for the message. */
  routeKeyFailed: 'ROUTE_KEY_FAILED',
  /** The cluster's NATS connection is down (with `whileDisconnected: 'fail'`). */
  clusterUnavailable: 'CLUSTER_UNAVAILABLE',
  /** The primary of this secondary's group is gone. */
  primaryLost: 'PRIMARY_LOST',
  /** A launched child process died (or did not get ready in time) while starting. */
  childFailed: 'CHILD_FAILED',
  /** A process pool gave up restarting its children (too many restarts within the window). */
  poolFailed: 'POOL_FAILED',
  /** A process pool was closed while the operation waited. */
  poolClosed: 'POOL_CLOSED',
} as const;

/**
 * The `signal` given to an ask aborted before the answer came. Its `name` is 'AbortError', as
 * for Node's own APIs, and its `cause` the signal's reason. A reply arriving later goes to dead
 * letters.
 */
export class AskAbortedError extends MpBusError {
  constructor(
    /** The actor asked. */
    readonly actor: string,
    /** The action asked for. */
    readonly action: string,
    reason: unknown,
  ) {
    super(ActorErrorCodes.askAborted, `the ask to '${actor}' for '${action}' was aborted by its signal before the answer came`, { cause: reason });
    this.name = 'AbortError';
  }
}

/** An ask got no answer within its `timeoutMs`. A reply arriving later goes to dead letters. */
export class AskTimeoutError extends MpBusError {
  constructor(
    /** The actor asked. */
    readonly actor: string,
    /** The action asked for. */
    readonly action: string,
    /** The ask's timeout. */
    readonly timeoutMs: number,
  ) {
    super(
      ActorErrorCodes.askTimeout,
      `actor '${actor}' did not answer '${action}' within ${timeoutMs} ms: raise timeoutMs, or check the actor is alive and not blocked`,
    );
    this.name = 'AskTimeoutError';
  }
}

/** No actor holds that name (never spawned, or already stopped). */
export class ActorNotFoundError extends MpBusError {
  constructor(
    readonly actor: string,
    action: string,
  ) {
    super(
      ActorErrorCodes.actorNotFound,
      `no actor named '${actor}' is running in the group, nor (with a cluster) on another host (message '${action}'): spawn it first (when another process spawns it, \`await system.whenServed('${actor}')\` waits for it), or watch it to learn when it stops`,
    );
    this.name = 'ActorNotFoundError';
  }
}

/** The actor stopped before it processed the message. */
export class ActorStoppedError extends MpBusError {
  constructor(
    readonly actor: string,
    action: string,
    why = 'stopped',
  ) {
    super(ActorErrorCodes.actorStopped, `actor '${actor}' ${why} before it answered '${action}'`);
    this.name = 'ActorStoppedError';
  }
}

/** The actor is not on this host, and the cluster connection (NATS) is down. */
export class ClusterUnavailableError extends MpBusError {
  constructor(
    readonly actor: string,
    readonly action: string,
    detail = 'the cluster connection is down',
  ) {
    super(
      ActorErrorCodes.clusterUnavailable,
      `cannot reach '${actor}' for '${action}' on another host: ${detail}; retry later, or set cluster.whileDisconnected: 'retry'`,
    );
    this.name = 'ClusterUnavailableError';
  }
}

/** This secondary's primary died (or closed), so the system closed (see the runtime option `onPrimaryLost`). */
export class PrimaryLostError extends MpBusError {
  constructor(
    what: string,
    readonly reason: 'died' | 'left' = 'died',
  ) {
    super(
      ActorErrorCodes.primaryLost,
      `the primary of this process's group ${reason === 'died' ? 'died' : 'closed'} and the actor system closed: ${what}; start a new primary, then this process again`,
    );
    this.name = 'PrimaryLostError';
  }
}

/** The actor system is closing or closed: this process's, or (`answering`) the one of the actor asked. */
export class SystemClosedError extends MpBusError {
  constructor(what: string, answering = false) {
    super(
      ActorErrorCodes.systemClosed,
      answering
        ? `the actor system of the actor asked closed: ${what}; this process's system is open: ask again, and another actor of that name (on another host, or a router's other worker) or the actor once its process is back answers`
        : `the actor system is closed: ${what}; a system of startActorSystem cannot be started again in this process (DPDK starts once per process: start another process), an in-process one can (new ActorSystem())`,
    );
    this.name = 'SystemClosedError';
  }
}

/**
 * A handler failed; this is what an asker receives. `code` is the handler error's own code
 * when it had one (so `MpBusError`s thrown by a remote handler keep their code), else
 * `HANDLER_FAILED`.
 */
export class ActorHandlerError extends MpBusError {
  constructor(
    /** The actor whose handler failed. */
    readonly actor: string,
    /** The action it was handling. */
    readonly action: string,
    /** The handler's error as it crossed: its name, message, code, stack, own fields and cause. */
    readonly remote: WireError,
  ) {
    super(
      remote.code || ActorErrorCodes.handlerFailed,
      `actor '${actor}' failed on '${action}': ${remote.name}: ${remote.message}`,
      remote.cause === undefined ? undefined : { cause: remote.cause },
    );
    this.name = 'ActorHandlerError';
    // The handler error's custom fields, where they do not hide this error's own.
    if (remote.fields !== null && typeof remote.fields === 'object') {
      for (const [k, v] of Object.entries(remote.fields)) if (!(k in this)) (this as unknown as Record<string, unknown>)[k] = v;
    }
    // The stack goes on with where the handler threw, naming its process.
    if (typeof remote.stack === 'string' && this.stack !== undefined) {
      const where = typeof remote.pid === 'number' ? `in process ${remote.pid}` : 'in the answering process';
      this.stack += `\n  thrown by actor '${actor}' ${where}:\n${remote.stack.replace(/^/gm, '    ')}`;
    }
  }
}

/** A child process of a pool died, or did not get ready in time, while it was starting. */
export class ChildFailedError extends MpBusError {
  constructor(
    readonly pool: string,
    readonly index: number,
    /** Its exit code, or null when a signal ended it (or it did not end: a start-up timeout). */
    readonly exitCode: number | null,
    /** The signal that ended it, if any. */
    readonly signal: string | null,
    /** The last lines it wrote to stderr. */
    readonly stderrTail: string,
    why: string,
    /** What to do, when the cause is known to lie outside the child module. */
    fix?: string,
  ) {
    const tail = stderrTail.trim() ? `; its last stderr lines:\n${stderrTail.trimEnd()}` : '; it wrote nothing to stderr';
    const todo =
      fix ?? `fix the child module (run it alone to see why)${exitCode === null && signal === 'SIGKILL' ? ', or raise startTimeoutMs if it is only slow' : ''}`;
    super(ActorErrorCodes.childFailed, `child ${index} of pool '${pool}' ${why}: ${todo}${tail}`);
    this.name = 'ChildFailedError';
  }
}

/**
 * Turns any thrown value into its wire form: name, code, message, stack, this process's pid and
 * the custom fields that can cross processes (those that cannot are sent as a note saying so).
 * `thrown`: a handler threw it (see {@link WireError.thrown}).
 */
export function toWireError(err: unknown, thrown = false): WireError {
  let wire: WireError;
  try {
    wire = wireFormOf(err);
  } catch (readFailed) {
    // An error whose getters or proxy traps throw: the asker still gets an error, and the
    // throw stays out of the caller (a handler's failure path, which must not throw).
    const why = readFailed instanceof Error ? readFailed.message : String(readFailed);
    wire = { name: 'Error', code: ActorErrorCodes.handlerFailed, message: `an error that could not be read (${why})`, pid: process.pid };
  }
  if (thrown) wire.thrown = true;
  return wire;
}

function wireFormOf(err: unknown): WireError {
  if (err instanceof Error) {
    const wire: WireError = { name: err.name, code: codeOf(err), message: err.message, pid: process.pid };
    if (typeof err.stack === 'string') wire.stack = err.stack;
    if (err.cause !== undefined) wire.cause = crossing(err.cause, 'cause');
    return withFields(wire, err);
  }
  // A thrown plain object (`throw { code, message, ... }`) is an error in all but its class: keep
  // what it says. Other values (a string, undefined) become the message.
  if (typeof err === 'object' && err !== null && !Array.isArray(err)) {
    const message = (err as { message?: unknown }).message;
    const text = typeof message === 'string' ? message : inspect(err, { depth: 2, breakLength: Infinity });
    const name = (err as { name?: unknown }).name;
    const wire: WireError = { name: typeof name === 'string' ? name : 'Error', code: codeOf(err), message: text, pid: process.pid };
    const cause = (err as { cause?: unknown }).cause;
    if (cause !== undefined) wire.cause = crossing(cause, 'cause');
    return withFields(wire, err);
  }
  return { name: 'Error', code: ActorErrorCodes.handlerFailed, message: typeof err === 'string' ? err : inspect(err), pid: process.pid };
}

function codeOf(err: object): string {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? code : ActorErrorCodes.handlerFailed;
}

/**
 * `wire` with the thrown value's own fields (but those `wire` has itself): those that can cross,
 * others as a note. A `code` that is not a string (an errno number) is not the error's code: it
 * stays a field. An `AggregateError`'s `errors` (not an enumerable field) go too.
 */
function withFields(wire: WireError, err: object): WireError {
  let fields: Record<string, unknown> | undefined;
  for (const k of Object.keys(err)) {
    if (k === 'name' || k === 'message' || k === 'stack' || k === 'cause') continue;
    let v: unknown;
    try {
      v = (err as Record<string, unknown>)[k];
    } catch {
      (fields ??= {})[k] = '[a field whose getter threw]';
      continue;
    }
    if (k === 'code' && typeof v === 'string') continue;
    (fields ??= {})[k] = crossing(v, k);
  }
  if (err instanceof AggregateError && !(fields !== undefined && 'errors' in fields)) (fields ??= {}).errors = crossing(err.errors, 'errors');
  if (fields) wire.fields = fields;
  return wire;
}

/** What an encode failure says (a value nested too deeply fails with V8's RangeError). */
export function encodeFailure(cause: unknown): string {
  if (cause instanceof RangeError) return `it is nested too deeply to be sent to another process (${cause.message})`;
  return describeThrown(cause);
}

/**
 * The failure an asker gets for an answer that could not be encoded (`cause`, the encoder's
 * error): `ENCODE_FAILED`, with `path` (where in the answer) when the encoder named it; or that
 * was too large to be sent (`MESSAGE_TOO_LARGE`, the hugepage memory short). The same from a
 * process of this host and from another host.
 */
export function unsendableAnswer(cause: unknown): MpBusError {
  if (isTooLarge(cause)) return new MpBusError(ErrorCodes.messageTooLarge, `the answer could not be sent: ${cause.message}`);
  const err = new MpBusError(ErrorCodes.encodeFailed, `the answer could not be sent: ${encodeFailure(cause)}`);
  // a field: the asker's error gets it as err.path
  const path = (cause as { path?: unknown })?.path;
  if (typeof path === 'string') err.path = path;
  return err;
}

/**
 * A failure whose wire form does not encode (a field of the handler's error nested too deeply,
 * or one msgpack cannot carry), said in strings: its asker still gets it at once, with its name
 * and code, rather than its timeout.
 */
export function plainWireError(wire: WireError, cause: unknown): WireError {
  const plain: WireError = {
    name: typeof wire.name === 'string' ? wire.name : 'Error',
    code: typeof wire.code === 'string' ? wire.code : ActorErrorCodes.handlerFailed,
    message: `${typeof wire.message === 'string' ? wire.message : 'an error'} (the rest of it could not be sent: ${encodeFailure(cause)})`,
  };
  if (typeof wire.stack === 'string') plain.stack = wire.stack;
  if (typeof wire.pid === 'number') plain.pid = wire.pid;
  if (wire.thrown === true) plain.thrown = true;
  return plain;
}

/**
 * True when a failure reply says the asked actor did not take the ask: it stopped, no one holds
 * its name, or its system closed (it refuses what comes once its close began, and answers what
 * the close's deadline left in its queue). A router then gives the ask to another worker; on a
 * secondary it may be its primary going (see `Runtime.primaryGoneNow`). A handler's own error
 * with such a code (a nested ask's) is the handler's answer.
 */
export function actorGone(wire: WireError | undefined): boolean {
  if (wire === undefined || wire === null || wire.thrown === true) return false;
  return wire.code === ActorErrorCodes.actorStopped || wire.code === ActorErrorCodes.actorNotFound || wire.code === ActorErrorCodes.systemClosed;
}

/** `v` when it can cross processes, else a note saying what it was. */
function crossing(v: unknown, path: string): unknown {
  try {
    checkValue(v, path);
    return v;
  } catch {
    return `[${typeof v} that cannot cross processes]`;
  }
}

/**
 * Rebuilds the typed error a failure reply carries (our own codes become their own classes; an
 * error a handler threw is an {@link ActorHandlerError} whatever its code).
 */
export function fromWireError(actor: string, action: string, wire: WireError): Error {
  if (wire.thrown === true) return new ActorHandlerError(actor, action, wire);
  switch (wire.code) {
    case ActorErrorCodes.actorStopped:
      // (a `why` field says more than "stopped": its host went away, say)
      return new ActorStoppedError(actor, action, typeof wire.fields?.why === 'string' ? wire.fields.why : undefined);
    case ActorErrorCodes.actorNotFound:
      return new ActorNotFoundError(actor, action);
    case ActorErrorCodes.clusterUnavailable:
      return new ClusterUnavailableError(actor, action, wire.message);
    case ActorErrorCodes.systemClosed:
      // (while this process's own system closes, the asker gets its close error instead: see ActorSystem.lostError)
      return new SystemClosedError(`actor '${actor}' was shut down before it answered '${action}'`, true);
    case ActorErrorCodes.askTimeout: {
      // a router's worker timeout, passed on by the router's process: the worker it waited for
      const f = wire.fields ?? {};
      const timeoutMs = typeof f.timeoutMs === 'number' ? f.timeoutMs : 0;
      return new AskTimeoutError(typeof f.actor === 'string' ? f.actor : actor, typeof f.action === 'string' ? f.action : action, timeoutMs);
    }
    case ActorErrorCodes.handlerFailed:
      return new ActorHandlerError(actor, action, wire);
    default:
      return systemFailure(wire);
  }
}

/**
 * A failure the answering side's system made (not a handler's throw) with a code that has no
 * class of its own: `NO_HANDLER`, `ENCODE_FAILED` (an answer that could not be sent),
 * `MESSAGE_TOO_LARGE` (one over NATS's limit), `NO_WORKERS`...: an `MpBusError` with that code
 * and message, as the same failure made in the asker's own process, its fields kept.
 */
function systemFailure(wire: WireError): MpBusError {
  const err = new MpBusError(wire.code, wire.message, wire.cause === undefined ? undefined : { cause: wire.cause });
  // its fields (an ENCODE_FAILED's `path`), where they do not hide the error's own
  if (wire.fields !== null && typeof wire.fields === 'object') {
    for (const [k, v] of Object.entries(wire.fields)) if (!(k in err)) (err as unknown as Record<string, unknown>)[k] = v;
  }
  return err;
}
