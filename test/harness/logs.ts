/** What a process wrote to stderr apart from mpbus's own log lines (pino JSON, `name` 'mpbus'). */

/** True for one of mpbus's log lines. */
export function isMpbusLog(line: string): boolean {
  if (!line.startsWith('{')) return false;
  try {
    return (JSON.parse(line) as { name?: unknown }).name === 'mpbus';
  } catch {
    return false;
  }
}

/** `stderr` without mpbus's log lines (a stack trace, say, or what the program wrote itself). */
export function besidesMpbusLogs(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !isMpbusLog(l))
    .join('\n');
}
