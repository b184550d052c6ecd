/**
 * Structured logging through pino, quiet by default (`MPBUS_LOG=debug` to see more), on stderr:
 * a library's diagnostics stay out of the application's own output, as DPDK's echoed lines do.
 * An application that logs through pino itself may give its logger instead (the runtime option
 * `logger`): mpbus's lines then go where the application's go, as its children.
 */
import { pino, type Logger } from 'pino';
import { ErrorCodes, MpBusError } from './errors.js';

/** The levels `MPBUS_LOG` may name (pino's). */
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const DEFAULT_LEVEL = 'warn';
/** The methods a logger given to mpbus must have: pino's, called as pino's are (`log.warn({ err }, 'message')`). */
const LOGGER_METHODS = ['child', 'fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/** One of pino's level methods: an object of fields and a message, or a message alone. */
export interface LogMethod {
  (fields: object, message?: string): void;
  (message: string): void;
}

/**
 * A logger mpbus may log through: a pino logger (pino 8 and 10 tried), or one with pino's
 * methods and calling convention. mpbus calls only `child(bindings)` and the level methods.
 */
export interface MpBusLogger {
  child(bindings: Record<string, unknown>): MpBusLogger;
  fatal: LogMethod;
  error: LogMethod;
  warn: LogMethod;
  info: LogMethod;
  debug: LogMethod;
  trace: LogMethod;
}

const asked = (process.env.MPBUS_LOG ?? '').trim().toLowerCase();
const known = LEVELS.includes(asked);

// Synchronous writes: a line logged just before the process ends is not lost.
let root: Logger = pino({ name: 'mpbus', level: known ? asked : DEFAULT_LEVEL, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));
let given: MpBusLogger | undefined;

// An empty or unknown value (containers often set variables empty) must not stop the import.
if (asked !== '' && !known) {
  root
    .child({ component: 'log' })
    .warn(`MPBUS_LOG=${JSON.stringify(process.env.MPBUS_LOG)} is not a log level (${LEVELS.join(', ')}): logging at ${DEFAULT_LEVEL}`);
}

/** A child logger for one component (`runtime`, `bus`, `actor:<name>`...). */
export function logger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return root.child({ component, ...bindings });
}

/** The logger the application gave (the runtime option `logger`), if it gave one. */
export function givenLogger(): MpBusLogger | undefined {
  return given;
}

/** Checks the option `logger`: a logger with pino's methods, else `INVALID_OPTION` naming the missing ones. */
export function checkLogger(value: unknown, name: string): MpBusLogger | undefined {
  if (value === undefined) return undefined;
  const missing =
    value !== null && typeof value === 'object' ? LOGGER_METHODS.filter((m) => typeof (value as Record<string, unknown>)[m] !== 'function') : LOGGER_METHODS;
  if (missing.length > 0) {
    throw new MpBusError(
      ErrorCodes.invalidOption,
      `${name} must be a pino logger (or one with pino's methods: ${LOGGER_METHODS.join(', ')}), got ${value === null ? 'null' : typeof value}${missing.length < LOGGER_METHODS.length ? ` without ${missing.join(', ')}` : ''}`,
    );
  }
  return value as MpBusLogger;
}

/**
 * From now on, mpbus's lines in this process go through the application's logger, as a child
 * with `lib: 'mpbus'`, at its level (or at `MPBUS_LOG`'s when that is set). Loggers made before
 * keep mpbus's own: the runtime sets it first thing in its start.
 */
export function useLogger(appLogger: MpBusLogger): void {
  given = appLogger;
  // mpbus calls the given logger as it calls pino; its type is pino's for the components' sake.
  root = appLogger.child({ lib: 'mpbus' }) as unknown as Logger;
  if (known && typeof root.level === 'string') root.level = asked;
}
