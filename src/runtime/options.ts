/** Runtime options, their validation, and the EAL command line built from them. */
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { MpBusError, ErrorCodes } from '../errors.js';
import { checkedOptions, filePrefix as checkFilePrefix, flag, integerIn, optionKeys } from '../validation.js';
import { validateDpdkLibraries } from './libraries.js';
import { onHugetlbfs } from './group.js';
import { checkLogger, type MpBusLogger } from '../log.js';
import { chooseCpus, formatCpuList, parseCpuList, readAllowedCpus, type CpuList } from './cpus.js';

export type ProcType = 'primary' | 'secondary' | 'auto';
/** See {@link RuntimeOptions.onPrimaryLost}. */
export type PrimaryLostPolicy = 'exit' | 'close' | 'ignore';
export type LogLevelName = 'none' | 'emerg' | 'alert' | 'crit' | 'error' | 'warning' | 'notice' | 'info' | 'debug';

/** Options of {@link Runtime.start}. Every field is optional. */
export interface RuntimeOptions {
  /** 'auto' (default) becomes a secondary when a primary of `filePrefix` is alive, else the primary. */
  procType?: ProcType | undefined;
  /** The group's name: DPDK's `--file-prefix`. Groups with different prefixes share nothing. Default 'mpbus'. */
  filePrefix?: string | undefined;
  /** Hugepage memory limit in MB (`-m`). */
  memoryMb?: number | undefined;
  /** Hugepage memory per NUMA socket in MB (`--socket-mem`). */
  socketMemMb?: number | number[] | undefined;
  /**
   * `--legacy-mem` (default false): the same in every process of a group. A secondary of an mpbus
   * primary that leaves it out takes the primary's; one it gives must be the primary's (mpbus checks).
   */
  legacyMem?: boolean | undefined;
  /** `--single-file-segments` (default false): the same in every process of a group, as `legacyMem`. */
  singleFileSegments?: boolean | undefined;
  /**
   * The directory the group's hugepage files live in (DPDK's `--huge-dir`): an absolute path to a
   * hugetlbfs mount or to a directory within one, which this process may write. A user who is not
   * root needs only such a directory, not the mount (as root: `mkdir /dev/hugepages/app && chown
   * app: /dev/hugepages/app`). Default: the first hugetlbfs mount of each page size, every one of
   * which this process must be able to write. The primary's is the group's: a secondary needs
   * none, and one it gives must be the primary's (mpbus checks).
   */
  hugeDir?: string | undefined;
  /** This process's lcore ID, unique in the group. 'auto' (default) takes the lowest free one. */
  lcore?: number | 'auto' | undefined;
  /**
   * The CPUs this process runs on, as DPDK's cpu-set syntax (`'1'`, `'0-3'`, `'0,2-3'`) or CPU
   * numbers: its lcore is mapped onto them (`--lcores=<lcore>@(<cpus>)`) and its JS thread (the
   * lcore) is moved onto them before EAL init, with the threads mpbus starts from it; Node's own
   * threads (V8's workers, libuv's pool) may use every CPU the process may (EAL itself would pin
   * only the thread that runs its init, a libuv pool thread). Each must be one this process may use (its affinity mask: taskset, cgroups), else
   * `INVALID_OPTION` naming the CPUs. Default: every CPU it may use, unpinned. A child launched by
   * `system.launch()` gets its pool's placement here (see `LaunchOptions.placement`); the CPUs in
   * force are `Runtime.cpus` (docs/process-model.md, "CPU placement").
   */
  cpus?: CpuList | undefined;
  /** Virtual devices (`--vdev`), e.g. `net_null0` or `net_ring0`. */
  vdevs?: string[] | undefined;
  /** PCI devices to probe (`-a`). Empty (default) means `--no-pci`. */
  pciAllowList?: string[] | undefined;
  /** DPDK log level echoed to stderr. Default 'none': DPDK's last lines are quoted in errors instead. */
  logLevel?: LogLevelName | undefined;
  /** Primary only: where DPDK reserves the group's address space. Default 0x600000000000, away from V8's heap. */
  baseVirtaddr?: string | undefined;
  /**
   * Install SIGINT/SIGTERM/SIGHUP/SIGUSR2 handlers (default true). A signal the application does
   * not listen to closes the runtime (and the actor system on it) and ends the process as the
   * signal means; when the application listens to it, the first one is the application's to
   * handle and a second one closes and ends the process (SIGHUP and SIGUSR2, which applications
   * use to reload or to take a heap snapshot, stay the application's whenever it listens to
   * them; SIGUSR2 is nodemon's restart signal). Listened to from the start's first step: a signal
   * during the start closes once DPDK's init returns. While mpbus ends the process, work in
   * flight that fails for it (`SYSTEM_CLOSED`, ...) and that nothing catches does not crash the
   * process (docs/process-model.md, "Signals and shutdown").
   */
  handleSignals?: boolean | undefined;
  /**
   * What a secondary does when its primary dies or closes (it learns within a second, see
   * `Runtime.primaryLost$`): 'exit' (default) closes the actor system (pending asks fail with
   * `PRIMARY_LOST`), leaves the group and exits (code 69 when the primary died, 0 when it
   * closed); 'close' does the same but leaves the process running; 'ignore' only emits on
   * `primaryLost$`, for an application that shuts down itself.
   */
  onPrimaryLost?: PrimaryLostPolicy | undefined;
  /**
   * DPDK telemetry (default true, as in DPDK): the primary serves `dpdk_telemetry.v2` in the
   * group's runtime dir, with DPDK's commands and mpbus's (`/mpbus/processes`, `/mpbus/actors`,
   * `/mpbus/mailboxes`); `dpdk-telemetry.py -f <prefix>` connects to it. `false` passes
   * `--no-telemetry`: no telemetry thread, no socket (docs/observability.md, "What telemetry costs").
   */
  telemetry?: boolean | undefined;
  /** Escape hatch: more EAL arguments, appended as given (not `--telemetry`/`--no-telemetry`: see `telemetry`). */
  extraEalArgs?: string[] | undefined;
  /**
   * DPDK libraries to load before EAL init, by name (`['rib', 'fib']`) or `'all'` (every library
   * of `pkg-config --libs libdpdk`): a primary must load every library its C secondaries link
   * (the tailq rule). Default none beyond what mpbus uses.
   */
  dpdkLibraries?: string[] | 'all' | undefined;
  /**
   * The application's pino logger (or one with pino's methods): mpbus's own lines in this
   * process go through it, as its child with `lib: 'mpbus'` and a `component`, at its level
   * (`MPBUS_LOG`, when set, sets theirs), and so do actors' `ctx.log`. Default: mpbus's own pino
   * logger, JSON lines on stderr at `warn`. It is the process's, as the runtime is: a later
   * start in the same process may give the same logger or none. A child of `system.launch()`
   * gives its own in its own start (docs/observability.md, "mpbus's own log lines").
   */
  logger?: MpBusLogger | undefined;
}

/** Every option of {@link RuntimeOptions}. */
export const RUNTIME_OPTION_KEYS = optionKeys<RuntimeOptions>({
  procType: true,
  filePrefix: true,
  memoryMb: true,
  socketMemMb: true,
  legacyMem: true,
  singleFileSegments: true,
  hugeDir: true,
  lcore: true,
  cpus: true,
  vdevs: true,
  pciAllowList: true,
  logLevel: true,
  baseVirtaddr: true,
  handleSignals: true,
  onPrimaryLost: true,
  telemetry: true,
  extraEalArgs: true,
  dpdkLibraries: true,
  logger: true,
});

/** Options after defaults and validation. */
export interface ResolvedOptions {
  procType: ProcType;
  filePrefix: string;
  memoryMb?: number;
  socketMemMb?: number[];
  legacyMem: boolean;
  singleFileSegments: boolean;
  /** Which of the two above the caller left out: a secondary of an mpbus primary takes the primary's. */
  leftOut: ('legacyMem' | 'singleFileSegments')[];
  /** The real path of the option's directory. */
  hugeDir?: string;
  lcore: number | 'auto';
  /** Sorted CPU numbers; undefined: every CPU the process may use. */
  cpus: number[] | undefined;
  vdevs: string[];
  pciAllowList: string[];
  logLevel: LogLevelName;
  baseVirtaddr: string;
  handleSignals: boolean;
  onPrimaryLost: PrimaryLostPolicy;
  telemetry: boolean;
  extraEalArgs: string[];
  dpdkLibraries: string[] | 'all';
}

/** DPDK's numeric log levels (rte_log.h). */
export const logLevelNumbers: Record<LogLevelName, number> = {
  none: 0,
  emerg: 1,
  alert: 2,
  crit: 3,
  error: 4,
  warning: 5,
  notice: 6,
  info: 7,
  debug: 8,
};

const DEFAULT_BASE_VIRTADDR = '0x600000000000';
/** DPDK's RTE_MAX_LCORE in Debian's build: lcore IDs are 0..127. */
export const MAX_LCORE = 128;
/**
 * Arguments mpbus owns or forbids in extraEalArgs: the lcore and group flags contradict the
 * options, the memory-layout flags must go through the options so secondaries are checked
 * against the primary, `-h`/`--help` make DPDK call exit(), and `--in-memory`, `--no-shconf`
 * and `--huge-unlink` leave nothing for secondaries to attach to.
 */
const OWNED_ARGS = [
  '--proc-type',
  '--file-prefix',
  '-l',
  '--lcores',
  '-c',
  '--main-lcore',
  '-h',
  '--help',
  '-v',
  '--version',
  '--in-memory',
  '--no-shconf',
  '--huge-unlink',
  '--legacy-mem',
  '--single-file-segments',
  '-m',
  '--socket-mem',
  '--no-huge',
  '--vdev',
  '--no-pci',
  '-a',
  '--allow',
  '--base-virtaddr',
  '--huge-dir',
];

function invalid(message: string): never {
  throw new MpBusError(ErrorCodes.invalidOption, message);
}

/** A list of EAL arguments or device names: a string where an array belongs would become one argument per character. */
function stringList(value: unknown, name: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v.length === 0))
    invalid(`${name} takes an array of non-empty strings, got ${JSON.stringify(value)}`);
  return value as string[];
}

/** The option hugeDir: an absolute path to a directory on hugetlbfs, as its real path (DPDK matches it against the mount points). */
function hugeDirOption(value: unknown): string {
  if (typeof value !== 'string' || !isAbsolute(value)) invalid(`hugeDir must be an absolute path, got ${JSON.stringify(value)}`);
  let dir: string;
  try {
    dir = realpathSync(value);
    if (!statSync(dir).isDirectory()) invalid(`hugeDir ${value} is not a directory`);
  } catch (err) {
    if (err instanceof MpBusError) throw err;
    invalid(`hugeDir ${value} cannot be used: ${(err as Error).message}`);
  }
  if (!onHugetlbfs(dir)) {
    invalid(
      `hugeDir ${value} is not on hugetlbfs: give a hugetlbfs mount (mount -t hugetlbfs nodev <dir>) or a directory within one, such as /dev/hugepages/<name>`,
    );
  }
  return dir;
}

function flagOr(value: unknown, name: string, dflt: boolean): boolean {
  return value === undefined ? dflt : flag(value, name);
}

export function resolveOptions(options: RuntimeOptions = {}): ResolvedOptions {
  checkedOptions(options, RUNTIME_OPTION_KEYS, 'Runtime.start options');
  const procType = options.procType ?? 'auto';
  if (!['primary', 'secondary', 'auto'].includes(procType)) invalid(`procType must be 'primary', 'secondary' or 'auto', got ${String(procType)}`);
  const filePrefix = checkFilePrefix(options.filePrefix ?? 'mpbus', 'filePrefix');
  const lcore = options.lcore ?? 'auto';
  if (lcore !== 'auto' && (!Number.isInteger(lcore) || lcore < 0 || lcore >= MAX_LCORE)) {
    invalid(`lcore must be 'auto' or an integer 0..${MAX_LCORE - 1}, got ${String(lcore)}`);
  }
  const telemetry = options.telemetry ?? true;
  if (typeof telemetry !== 'boolean') invalid(`telemetry must be true or false, got ${String(telemetry)}`);
  const socketMem = options.socketMemMb === undefined ? undefined : ([] as number[]).concat(options.socketMemMb);
  // (an empty list would become `--socket-mem=`, which DPDK refuses with no word of this option)
  if (socketMem?.length === 0) invalid('socketMemMb must give the MB of at least one NUMA socket, e.g. [1024] or 1024');
  socketMem?.forEach((mb, i) => integerIn(mb, `socketMemMb[${i}]`, 1, Infinity));
  if (options.memoryMb !== undefined) integerIn(options.memoryMb, 'memoryMb', 1, Infinity);
  if (options.memoryMb !== undefined && socketMem) invalid('memoryMb (-m) and socketMemMb (--socket-mem) cannot be used together');
  const logLevel = options.logLevel ?? 'none';
  if (!(logLevel in logLevelNumbers)) invalid(`logLevel must be one of ${Object.keys(logLevelNumbers).join(', ')}`);
  const baseVirtaddr = options.baseVirtaddr ?? DEFAULT_BASE_VIRTADDR;
  if (!/^0x[0-9a-fA-F]+$/.test(baseVirtaddr)) invalid(`baseVirtaddr must be a hex address like 0x600000000000, got ${baseVirtaddr}`);
  const vdevs = stringList(options.vdevs, 'vdevs');
  const pciAllowList = stringList(options.pciAllowList, 'pciAllowList');
  const handleSignals = flagOr(options.handleSignals, 'handleSignals', true);
  const onPrimaryLost = options.onPrimaryLost ?? 'exit';
  if (!['exit', 'close', 'ignore'].includes(onPrimaryLost)) invalid(`onPrimaryLost must be 'exit', 'close' or 'ignore', got ${String(onPrimaryLost)}`);
  const extraEalArgs = stringList(options.extraEalArgs, 'extraEalArgs');
  // Checked here with the others; kept out of the result, which is data (compared, printed).
  checkLogger(options.logger, 'logger');
  for (const arg of extraEalArgs) {
    const flag = arg.split('=')[0]!;
    if (flag === '--telemetry' || flag === '--no-telemetry') {
      invalid(
        `extraEalArgs must not contain ${flag}: telemetry is an option of its own (telemetry: true, the default, serves DPDK telemetry; telemetry: false turns it off)`,
      );
    }
    if (flag === '--huge-dir')
      invalid("extraEalArgs must not contain --huge-dir: use the option hugeDir (mpbus must know the directory to remove the group's files)");
    if (OWNED_ARGS.includes(flag))
      invalid(`extraEalArgs must not contain ${flag}: use the matching option (or it would break the group, e.g. --huge-unlink breaks secondaries)`);
  }
  return {
    procType,
    filePrefix,
    ...(options.memoryMb !== undefined ? { memoryMb: options.memoryMb } : {}),
    ...(socketMem ? { socketMemMb: socketMem } : {}),
    legacyMem: flagOr(options.legacyMem, 'legacyMem', false),
    singleFileSegments: flagOr(options.singleFileSegments, 'singleFileSegments', false),
    leftOut: (['legacyMem', 'singleFileSegments'] as const).filter((key) => options[key] === undefined),
    ...(options.hugeDir !== undefined ? { hugeDir: hugeDirOption(options.hugeDir) } : {}),
    lcore,
    cpus: options.cpus === undefined ? undefined : parseCpuList(options.cpus, 'cpus'),
    vdevs,
    pciAllowList,
    logLevel,
    baseVirtaddr,
    handleSignals,
    onPrimaryLost,
    telemetry,
    extraEalArgs,
    dpdkLibraries: validateDpdkLibraries(options.dpdkLibraries),
  };
}

/**
 * The EAL command line for one process. The lcore (unique in the group) is mapped onto `cpus`:
 * the process's `cpus` option, by default every CPU it may use.
 */
export function ealArgs(
  opts: ResolvedOptions,
  role: 'primary' | 'secondary',
  lcoreId: number,
  cpus: readonly number[] = chooseCpus(opts.cpus, readAllowedCpus()),
): string[] {
  const args = [
    'mpbus',
    `--proc-type=${role}`,
    `--file-prefix=${opts.filePrefix}`,
    `--lcores=${lcoreId}@(${formatCpuList(cpus)})`,
    ...(opts.telemetry ? [] : ['--no-telemetry']),
    `--log-level=${Math.max(logLevelNumbers[opts.logLevel], logLevelNumbers.notice)}`,
  ];
  if (opts.pciAllowList.length === 0) args.push('--no-pci');
  else for (const dev of opts.pciAllowList) args.push('-a', dev);
  if (role === 'primary') args.push(`--base-virtaddr=${opts.baseVirtaddr}`);
  if (opts.memoryMb !== undefined) args.push('-m', String(opts.memoryMb));
  if (opts.socketMemMb) args.push(`--socket-mem=${opts.socketMemMb.join(',')}`);
  if (opts.legacyMem) args.push('--legacy-mem');
  if (opts.singleFileSegments) args.push('--single-file-segments');
  if (opts.hugeDir !== undefined && role === 'primary') args.push(`--huge-dir=${opts.hugeDir}`);
  for (const vdev of opts.vdevs) args.push(`--vdev=${vdev}`);
  args.push(...opts.extraEalArgs);
  return args;
}
