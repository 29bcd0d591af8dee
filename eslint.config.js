import js from '@eslint/js'
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript'
import { importX } from 'eslint-plugin-import-x'
import tseslint from 'typescript-eslint'

/**
 * The layers, lowest first (docs/architecture.md draws them). A layer may import the ones below
 * it, never one above: lint fails on an import that points up.
 *
 *   config, db                        configuration; the database (drivers, migrations)
 *   repositories                      all SQL
 *   auth, mail, rate-limit, dependencies
 *                                     primitives the rules use: passwords, tokens, revocation,
 *                                     mail transport, counters, dependency monitors
 *   services                          the rules (no HTTP, no Fastify)
 *   http, schemas, plugins, routes    the HTTP layer
 *   app.ts, server.ts, cli.ts, cli/, process/
 *                                     entry points: the app, the process, the command line
 *
 * services/errors.ts, services/context.ts and services/clock.ts are the vocabulary every layer from
 * the primitives up may speak (what a rule answers, who asks, what time it is): the primitives may
 * import them.
 */
const HTTP_LAYER = ['./src/http', './src/schemas', './src/plugins', './src/routes']
const ENTRY_POINTS = ['./src/app.ts', './src/server.ts', './src/cli.ts', './src/cli', './src/process']
const PRIMITIVES = ['./src/auth', './src/mail', './src/rate-limit', './src/dependencies']

const zones = [
  // The database knows nothing above it.
  {
    target: './src/db',
    from: ['./src/repositories', ...PRIMITIVES, './src/services', ...HTTP_LAYER, ...ENTRY_POINTS],
    message: 'src/db is the lowest layer: it may import only config and other src/db modules.',
  },
  // Migrations are frozen: only kysely and their own frozen helpers (schema-v*.ts).
  {
    target: './src/db/migrations',
    from: './src',
    except: ['./db/migrations'],
    message: 'a migration is frozen in time: it imports only kysely and src/db/migrations/schema-v*.ts.',
  },
  {
    target: './src/repositories',
    from: [...PRIMITIVES, './src/services', ...HTTP_LAYER, ...ENTRY_POINTS],
    message: 'repositories hold SQL only: they may import src/db, never a layer above.',
  },
  {
    target: PRIMITIVES,
    from: ['./src/services', ...HTTP_LAYER, ...ENTRY_POINTS],
    except: ['./errors.ts', './context.ts', './clock.ts'],
    message: 'the primitives (auth, mail, rate-limit, dependencies) sit below the services and HTTP.',
  },
  {
    target: './src/services',
    from: [...HTTP_LAYER, ...ENTRY_POINTS],
    message: 'services hold the rules without HTTP: no routes, plugins, schemas or src/http.',
  },
  {
    target: ['./src/http', './src/schemas'],
    from: ['./src/routes', ...ENTRY_POINTS],
    message: 'src/http and src/schemas serve the routes; they never import one.',
  },
  {
    target: ['./src/routes', './src/http', './src/schemas'],
    from: './src/plugins',
    message:
      'plugins only wire and decorate: what a route needs comes from the app it is given, or from src/http.',
  },
  {
    target: './src/plugins',
    from: ['./src/routes', ...ENTRY_POINTS],
    message: 'plugins wire and decorate; routes come after them and use what they decorate.',
  },
  {
    target: './src/config',
    from: './src',
    except: ['./config'],
    message: 'configuration depends on nothing.',
  },
]

/** Frameworks that belong to the HTTP layer: a rule below it never sees them. */
const NO_HTTP_FRAMEWORK = {
  patterns: [
    {
      group: ['fastify', 'fastify-plugin', 'fastify/*', '@fastify/*'],
      message: 'this layer knows nothing of HTTP: Fastify belongs to src/http, src/plugins and src/routes.',
    },
  ],
}

export default tseslint.config(
  {
    ignores: [
      'dist/',
      '.cache/',
      'client/dist/',
      'data/',
      'node_modules/',
      'coverage/',
      'test-artifacts/',
      'reports/',
      '.stryker-tmp/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: { 'import-x/resolver-next': [createTypeScriptImportResolver({ project: './tsconfig.json' })] },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones }],
      'import-x/no-cycle': 'error',
      // Sizes a reader takes in at once: a module of ~250 lines, a function of ~60 (a route
      // plugin of many routes is one function per route; a large factory is split by concern).
      'max-lines': ['error', { max: 250, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    files: [
      'src/db/**',
      'src/repositories/**',
      'src/auth/**',
      'src/mail/**',
      'src/rate-limit/**',
      'src/dependencies/**',
      'src/services/**',
      'src/config/**',
    ],
    rules: { 'no-restricted-imports': ['error', NO_HTTP_FRAMEWORK] },
  },
  {
    // Migrations and the migrator work on every past schema version, which no single type describes.
    files: ['src/db/migrations/**', 'src/db/migrator.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
)
