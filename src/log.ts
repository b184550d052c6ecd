/** Structured logging through pino, quiet by default (`MPBUS_LOG=debug` to see more). */
import { pino, type Logger } from 'pino';

const root: Logger = pino({
  name: 'mpbus',
  level: process.env.MPBUS_LOG ?? 'warn',
  base: { pid: process.pid },
});

/** A child logger for one component (`runtime`, `bus`, `actor:<name>`...). */
export function logger(component: string, bindings: Record<string, unknown> = {}): Logger {
  return root.child({ component, ...bindings });
}
