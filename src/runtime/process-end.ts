/**
 * How the process ends when mpbus ends it: SIGINT/SIGTERM/SIGHUP/SIGUSR2 from the first moment of
 * `Runtime.start` on ({@link SignalWatch}), and the application's uncaught failures that mpbus's
 * own shutdown caused ({@link ignoreClosingFailures}). See docs/process-model.md,
 * "Signals and shutdown".
 */
import { constants } from 'node:os';
import { inspect } from 'node:util';
import type { Logger } from 'pino';
import { ErrorCodes, MpBusError } from '../errors.js';

/**
 * The signals that end the process unless it listens to them (Node's default for each is to end
 * it). SIGUSR2 is how nodemon, by default, stops a program to restart it (its whole process
 * tree): left to Node, it killed a primary outright, leaving its runtime dir and hugepage files.
 */
const ENDING_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR2'];

/**
 * The signals an application that listens to them uses for something else than stopping
 * (SIGHUP: reloading, as daemons do; SIGUSR2: a heap snapshot, reopening its logs): every one
 * stays the application's while it listens.
 */
const APPLICATION_SIGNALS: ReadonlySet<NodeJS.Signals> = new Set(['SIGHUP', 'SIGUSR2']);

/** The signal of Node's `--heapsnapshot-signal`, given on its command line or in NODE_OPTIONS. */
function heapSnapshotSignal(): string | undefined {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i]!;
    if (flag.startsWith('--heapsnapshot-signal=')) return flag.slice('--heapsnapshot-signal='.length);
    if (flag === '--heapsnapshot-signal') return flags[i + 1];
  }
  return undefined;
}

/**
 * Whether Node itself answers `signal` (a diagnostic report with `--report-on-signal`, whose
 * signal is SIGUSR2 unless set otherwise; a heap snapshot with `--heapsnapshot-signal`): it is then
 * the application's, as one it listens to. Read when the signal comes: `process.report`'s
 * settings may change while the process runs.
 */
function nodeAnswers(signal: NodeJS.Signals): boolean {
  return (process.report.reportOnSignal && process.report.signal === signal) || heapSnapshotSignal() === signal;
}

/**
 * How many listeners of each ending signal the package signal-exit added (a dependency of ora,
 * execa, write-file-atomic, tmp...: one per copy of it loaded, which it counts on its emitter, a
 * global of version 4 and `process.__signal_exit_emitter__` of version 3). They are not the
 * application's: signal-exit listens only to run its exit handlers, and ends the process itself
 * only when no other listener is there. Counted as the application's, they made mpbus leave the
 * first Ctrl-C to the application while signal-exit left it to mpbus: nothing ended the process
 * until a second one, and SIGHUP never.
 */
function signalExitListeners(): number {
  const v4 = (globalThis as Record<symbol, { count?: unknown } | undefined>)[Symbol.for('signal-exit emitter')];
  const v3 = (process as { __signal_exit_emitter__?: { count?: unknown } }).__signal_exit_emitter__;
  return [v4, v3].reduce((listeners, emitter) => listeners + (typeof emitter?.count === 'number' ? emitter.count : 0), 0);
}

/**
 * How soon a repeat of the same signal is taken for the same one. A program run by `npm start`
 * (npm forwards SIGINT and SIGTERM to the script it runs) gets a terminal's Ctrl-C twice: from the
 * terminal, to its whole process group, and from npm, as soon as npm's own loop turns. When the
 * two came apart, the second was taken as the user's "now": the close was cut short (an
 * application's own graceful shutdown too: it ended by the signal instead of its own exit code),
 * and during the start the process ended at once, leaving the group's files.
 */
const SAME_SIGNAL_MS = 200;

/** @internal A signal handler: what mpbus does with a signal the application left to it. */
export type SignalTarget = (signal: NodeJS.Signals) => void;

/**
 * @internal SIGINT/SIGTERM/SIGHUP/SIGUSR2 for one runtime, listened to from the start of
 * `Runtime.start`: without a listener, a signal that came while DPDK's init ran would kill the
 * process at once and leave the group's runtime dir (and, mid-init, its hugepage files) behind.
 *
 * When the application listens to the signal, the first one is the application's (its listener
 * runs its own graceful shutdown and decides when to exit); any further signal is mpbus's. SIGHUP
 * (the terminal went away: an ssh session dropped) and SIGUSR2 (nodemon's restart) are mpbus's
 * only while the application does not listen to them: an application that does uses them for
 * something else ({@link APPLICATION_SIGNALS}). A
 * signal mpbus takes before DPDK's init stops the start ({@link pendingSignal}, checked by the
 * start at each step); one during the init is held until the start is done ({@link takePending}):
 * the runtime then closes at once and the process ends as the signal means. A second one during
 * the start ends the process at once, whatever is left: DPDK's init cannot be cut short, and the
 * next primary of the group, or `mpbus clean`, removes what it leaves.
 */
export class SignalWatch {
  private signals = 0;
  private target: SignalTarget | undefined;
  private pending: NodeJS.Signals | undefined;
  /** The last signal taken, and when (`performance.now()`): see {@link SAME_SIGNAL_MS}. */
  private last: { signal: NodeJS.Signals; at: number } | undefined;

  private constructor(private readonly log: Logger) {
    // First in line, so the application's listeners (a `once` one included) are still counted.
    for (const signal of ENDING_SIGNALS) process.prependListener(signal, this.onSignal);
  }

  static install(log: Logger): SignalWatch {
    return new SignalWatch(log);
  }

  /** A signal mpbus took while the runtime started, if any. */
  get pendingSignal(): NodeJS.Signals | undefined {
    return this.pending;
  }

  /** The start is done: signals from now on go to `target`; returns the one that came during the start, if any. */
  takePending(target: SignalTarget): NodeJS.Signals | undefined {
    this.target = target;
    const signal = this.pending;
    this.pending = undefined;
    return signal;
  }

  /** The start failed and its files are released: a signal that came during it ends the process now. */
  startFailed(): void {
    this.remove();
    if (this.pending) exitAfterSignal(this.pending);
  }

  remove(): void {
    for (const signal of ENDING_SIGNALS) process.off(signal, this.onSignal);
  }

  private readonly onSignal = (signal: NodeJS.Signals): void => {
    const applicationListens = process.listenerCount(signal) - signalExitListeners() > 1;
    if (APPLICATION_SIGNALS.has(signal) && (applicationListens || nodeAnswers(signal))) return;
    const at = performance.now();
    if (this.last?.signal === signal && at - this.last.at < SAME_SIGNAL_MS) return;
    this.last = { signal, at };
    this.signals += 1;
    if (this.signals === 1 && applicationListens) return;
    if (this.target) return this.target(signal);
    if (this.pending === undefined) {
      this.pending = signal;
      this.log.info({ signal }, 'signal while starting: closing as soon as the start is done');
      return;
    }
    this.remove();
    exitAfterSignal(signal);
  };
}

/** How long the process waits to be killed by the signal it sent itself before it exits instead. */
const SELF_SIGNAL_WAIT_MS = 100;

/**
 * @internal Ends the process as `signal` means (killed by it: exit status 128 + signo to a
 * shell), after its 'exit' listeners, unless the application chose an exit code
 * (`process.exitCode`). Where the signal's default action does nothing, it exits with 128 +
 * signo itself: a process that is PID 1 of its PID namespace (`node dist/main.js` as a
 * container's command) is not killed by a signal it has no handler for, and went on after its
 * group closed, its own timers keeping it alive, until the container's stop timeout killed it.
 */
export function exitAfterSignal(signal: NodeJS.Signals): void {
  if (typeof process.exitCode === 'number' && process.exitCode !== 0) process.exit(process.exitCode);
  process.removeAllListeners(signal);
  const code = 128 + constants.signals[signal];
  // The application's 'exit' listeners run, as on any exit Node makes, and once: a death by
  // signal runs none, and pino flushes an asynchronous destination or a transport (pino-pretty,
  // a file's worker) in one. Without it, the lines of the close just made ("closing on signal",
  // the application's own in its close hooks) were lost.
  // (with process.exitCode set, as Node sets it for them; one that throws is reported on
  // stderr, and the process still ends by the signal)
  process.exitCode = code;
  try {
    process.emit('exit', code);
  } catch (err) {
    process.stderr.write(`${inspect(err)}\n`);
  }
  process.removeAllListeners('exit');
  setTimeout(() => process.exit(code), SELF_SIGNAL_WAIT_MS);
  process.kill(process.pid, signal);
}

/** Codes of the failures a closing group gives to work in flight; the layers above add theirs. */
const closingCodes = new Set<string>([ErrorCodes.closed, ErrorCodes.primaryLost, ErrorCodes.mailboxClosed]);

/** @internal Adds codes that mean "failed because the group closed" (`SYSTEM_CLOSED`, `POOL_CLOSED`). */
export function addClosingCodes(...codes: string[]): void {
  for (const code of codes) closingCodes.add(code);
}

let ignoringClosingFailures = false;

/**
 * @internal While mpbus ends the process (a signal, a lost primary with `onPrimaryLost: 'exit'`,
 * a launched child's stop), work in flight fails with a closing code. An application that
 * awaits it unguarded, at its top level (`await system.launch(...)` during Ctrl-C) or in a
 * callback, would have Node end the process at once with code 1 and a stack trace: before the
 * group is closed, and with another status than the signal's. Such failures, uncaught exceptions and unhandled rejections alike,
 * are dropped (logged at debug). Any other still ends the process as Node's default does,
 * unless the application listens for them itself.
 */
export function ignoreClosingFailures(log: Logger): void {
  if (ignoringClosingFailures) return;
  ignoringClosingFailures = true;
  // rxjs's EmptyError too: `await firstValueFrom(pool.events$.pipe(filter(...)))` fails so when
  // the close completes the observable before the event came (by name: the application's copy
  // of rxjs may not be mpbus's).
  const isClosing = (err: unknown): err is Error =>
    (err instanceof MpBusError && closingCodes.has(err.code)) || (err instanceof Error && err.name === 'EmptyError');
  const drop = (err: Error, how: string): void =>
    log.debug({ code: (err as Partial<MpBusError>).code ?? err.name, message: err.message }, `${how} while the process ends: dropped`);
  const onException = (err: unknown): void => {
    if (isClosing(err)) return drop(err, 'uncaught exception');
    if (process.listenerCount('uncaughtException') > 1) return; // the application's listener decides
    // Node's default: the error's report on stderr (stderr is synchronous for files, pipes
    // and terminals on Linux) and exit code 1; 'exit' listeners still run. Not a throw again:
    // one from this listener exits with 7, and one from a later tick has Node point its report
    // at that throw, in mpbus, instead of at the application's line.
    process.stderr.write(`${inspect(err)}\n\nNode.js ${process.version}\n`);
    process.exit(1);
  };
  const onRejection = (reason: unknown): void => {
    if (isClosing(reason)) return drop(reason, 'unhandled rejection');
    if (process.listenerCount('unhandledRejection') > 1) return;
    throw reason; // an uncaught exception now, as Node's default makes it
  };
  process.on('uncaughtException', onException);
  process.on('unhandledRejection', onRejection);
}
