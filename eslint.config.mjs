// ESLint for the TypeScript of src, test, samples and bench: ESLint's and typescript-eslint's
// recommended rules, and the type-aware rules that catch what the compiler lets through here
// (below); nothing stylistic (Prettier formats). `npm run lint`; `npm test` runs it.
// ESLint, typescript-eslint and the TypeScript they parse with live in tools/lint (installed by
// scripts/setup.sh): typescript-eslint parses with TypeScript's JavaScript API, which TypeScript
// 7, the project's compiler, does not have, so the linter keeps TypeScript 6 to itself.
import { createRequire } from 'node:module';

const lintTools = createRequire(new URL('./tools/lint/package.json', import.meta.url));
const load = async (name) => (await import(lintTools.resolve(name))).default;
const js = await load('@eslint/js');
const tseslint = await load('typescript-eslint');

export default tseslint.config(
  { ignores: ['dist/', 'build/', '**/node_modules/', 'test/.tmp/', 'bench/.tmp/', 'native/', 'tools/'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    // Type information from tsconfig.json (one program for src, test, samples and bench).
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Unused parameters named _x are deliberate (handlers of a fixed signature).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Type-aware rules, chosen from typescript-eslint's recommended-type-checked set for what
      // they catch in this code; the rest of that set (no-unsafe-*, require-await, unbound-method,
      // no-base-to-string) mostly flags deliberate `unknown` handling, `String(value)` in
      // messages about a bad value, and test matchers.
      // A promise nobody awaits or handles: a rejection that kills the process, a test that passes early.
      '@typescript-eslint/no-floating-promises': 'error',
      // A promise where a callback's result is ignored (an async listener whose rejection is lost).
      '@typescript-eslint/no-misused-promises': 'error',
      // `await` on something that is not a promise: a missing call or a wrong type.
      '@typescript-eslint/await-thenable': 'error',
      // A switch over a union that misses a member (a new envelope kind, a new event type);
      // a `default` covers the rest on purpose.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // Errors are Error objects (MpBusError with a code), thrown or as rejections; passing on
      // what a catch received (`unknown`) is allowed. value-codec.ts's Unsendable is the walk's
      // internal signal, caught within the file (no stack to capture on a hot path).
      '@typescript-eslint/only-throw-error': ['error', { allow: [{ from: 'file', name: 'Unsendable', path: 'src/bus/value-codec.ts' }] }],
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // Casts that say nothing hide the ones that matter.
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
    },
  },
);
