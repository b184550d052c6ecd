// The layer rules of mpbus (docs/architecture.md, "Layers and the checker that keeps them"):
// imports go down the layers, never up or sideways, and no module reaches itself through a cycle.
// `npm test` runs them (test/unit/layers.test.ts) and fails on any violation; `npm run layers`
// prints the same check.

/** The layers, lowest first. A layer may import the layers of a lower rank, and nothing else of the project. */
const layers = [
  // The vocabulary every layer shares: MpBusError, the logger, option checks, where the package is.
  { name: 'base', rank: 0, path: '^src/(errors|log|validation|package-root)\\.ts$' },
  { name: 'native', rank: 1, path: '^src/native/' },
  { name: 'runtime', rank: 2, path: '^src/runtime/' },
  // Siblings: neither imports the other.
  { name: 'shm', rank: 3, path: '^src/shm/' },
  { name: 'bus', rank: 3, path: '^src/bus/' },
  { name: 'interrupts', rank: 4, path: '^src/interrupts/' },
  // Readers of a group's shared counters (ps, top, Prometheus): they read files, never attach.
  { name: 'obs', rank: 4, path: '^src/obs/' },
  // PolledPorts describes ports with the interrupts layer's types.
  { name: 'ports', rank: 5, path: '^src/ports/' },
  { name: 'actors', rank: 6, path: '^src/actors/' },
  { name: 'cluster', rank: 7, path: '^src/cluster/' },
  // What users run or import: the package's entry and the composition of the layers it exports,
  // the bin, the samples, the benchmarks.
  { name: 'top', rank: 8, path: '^(src/(index|composition)\\.ts$|src/cli/|samples/|bench/)' },
];

const layerRules = layers.flatMap((layer) => {
  const notBelow = layers.filter((other) => other !== layer && other.rank >= layer.rank);
  if (notBelow.length === 0) return [];
  return {
    name: `${layer.name}-imports-down`,
    severity: 'error',
    comment: `${layer.name} may import only ${
      layers
        .filter((o) => o.rank < layer.rank)
        .map((o) => o.name)
        .join(', ') || 'nothing of the project'
    }: not ${notBelow.map((o) => o.name).join(', ')}`,
    from: { path: layer.path },
    to: { path: notBelow.map((o) => `(${o.path})`).join('|') },
  };
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'a cycle makes its modules one unit that can only be understood, tested and changed together',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'policy-not-on-native',
      severity: 'error',
      comment: 'actors, cluster and the bin use DPDK through the mechanism layers (runtime, shm, bus, interrupts), never src/native directly',
      from: { path: '^src/(actors|cluster|cli)/' },
      to: { path: '^src/native/' },
    },
    {
      name: 'registry-through-bus-registry',
      severity: 'error',
      comment: "the name registry's native functions (src/native/hash.ts) are called by src/bus/registry.ts alone",
      from: { pathNot: '^src/bus/registry\\.ts$' },
      to: { path: '^src/native/hash\\.ts$' },
    },
  ],
  options: {
    // TypeScript 7 has no JavaScript API for dependency-cruiser to parse with; swc parses TS (decorators included).
    parser: 'swc',
    // Type-only imports count: a layer that names another's types depends on it.
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    // bench/.tmp: a benchmark's scratch files (builds compared against this one), never the project's.
    exclude: { path: '^(dist|build|node_modules|bench/\\.tmp)/' },
    moduleSystems: ['es6', 'cjs'],
    // `./x.js` in a TypeScript source resolves to `./x.ts` when there is no x.js (dependency-cruiser does that by itself).
    enhancedResolveOptions: {
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.node'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
