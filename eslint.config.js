// Lint for correctness, not style: eslint's recommended rules plus the
// type-aware checks that catch what the typecheck cannot (an `any` that
// switches checking off, a promise whose rejection nobody handles, code that
// is no longer used). Formatting is left to the author.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'node_modules/', 'bench/results/', 'data/']),
  // A disable comment that no longer suppresses anything fails the lint.
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    // The non-type-aware recommended set plus a few type-aware checks:
    // the full recommendedTypeChecked set adds style and any-flow rules
    // (no-unsafe-*, require-await, ...) beyond what this lint is for.
    extends: [tseslint.configs.recommended],
    languageOptions: {
      parserOptions: {
        project: './tsconfig.test.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      // `void promise` marks a deliberate fire-and-forget whose own .catch
      // handles the rejection; the rule accepts it (ignoreVoid is the default).
      // node:test's describe/it/test return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // The fake upstreams and collectors in tests are `createServer(async (req, res) => ...)`:
    // a throw there surfaces as an unhandled rejection that fails the test file, which is
    // what a test wants. The gateway's own code keeps the full check.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
    },
  },
  {
    // The console's one script runs in the browser, served as it is (no build step).
    files: ['src/console/static/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', window: 'readonly', fetch: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', DOMParser: 'readonly', HTMLElement: 'readonly', URL: 'readonly' },
    },
  },
  {
    // bin/ and this file are plain ESM run by node, outside the TypeScript project.
    files: ['**/*.js', '**/*.mjs'],
    ignores: ['src/console/static/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { URL: 'readonly', console: 'readonly', process: 'readonly' },
    },
  },
);
