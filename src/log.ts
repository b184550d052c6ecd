/**
 * Structured logging through pino, quiet by default (`MPBUS_LOG=debug` to see more), on stderr:
 * a library's diagnostics stay out of the application's own output, as DPDK's echoed lines do.
 */
import { pino, type Logger } from 'pino';

/** The levels `MPBUS_LOG` may name (pino's). */
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const DEFAULT_LEVEL = 'warn';

const asked = (process.env.MPBUS_LOG ?? '').trim().toLowerCase();
const known = LEVELS.includes(asked);

// Synchronous writes: a line logged just before the process ends is not lost.
const root: Logger = pino({ name: 'mpbus', level: known ? asked : DEFAULT_LEVEL, base: { pid: process.pid } }, pino.destination({ dest: 2, sync: true }));

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
