// ESLint for the TypeScript of src, test, samples and bench: ESLint's and typescript-eslint's
// recommended rules, nothing stylistic (Prettier formats). `npm run lint`; `npm test` runs it.
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
    rules: {
      // Unused parameters named _x are deliberate (handlers of a fixed signature).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
);
