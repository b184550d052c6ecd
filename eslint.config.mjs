// ESLint for the TypeScript of src, test, samples and bench: ESLint's and typescript-eslint's
// recommended rules, nothing stylistic (Prettier formats). Not installed nor run by `npm test`
// yet: typescript-eslint parses with TypeScript's JavaScript API, which TypeScript 7 does not
// have (docs/architecture.md, "Tools", says what is left to turn it on).
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig([
  { ignores: ['dist/', 'build/', 'node_modules/', 'test/.tmp/', 'bench/.tmp/', 'native/'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    rules: {
      // Unused parameters named _x are deliberate (handlers of a fixed signature).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
]);
