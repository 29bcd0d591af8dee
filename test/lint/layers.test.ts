/**
 * The layer rules of eslint.config.js, shown to bite: an import that points up, Fastify below the
 * HTTP layer, a migration reaching outside its frozen helpers, a route reaching into a plugin, and
 * a module or a function past its size each fail lint, while the imports the layers allow pass. (ESLint lints the text as if it were the named file.)
 */
import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ESLint } from 'eslint'

const eslint = new ESLint()

async function problemsOf(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath })
  return result!.messages.filter((message) => message.severity === 2).map((message) => message.ruleId ?? '')
}

const refused: [what: string, file: string, code: string, rule: string][] = [
  [
    'a service importing the HTTP layer',
    'src/services/probe.ts',
    "import { problemOf } from '../http/problems.js'\nexport const probe = problemOf\n",
    'import-x/no-restricted-paths',
  ],
  [
    'a service importing Fastify',
    'src/services/probe.ts',
    "import type { FastifyInstance } from 'fastify'\nexport type Probe = FastifyInstance\n",
    'no-restricted-imports',
  ],
  [
    'a repository importing a service',
    'src/repositories/probe.ts',
    "import { notFound } from '../services/errors.js'\nexport const probe = notFound\n",
    'import-x/no-restricted-paths',
  ],
  [
    'the database layer importing a repository',
    'src/db/probe.ts',
    "import { createRepositories } from '../repositories/index.js'\nexport const probe = createRepositories\n",
    'import-x/no-restricted-paths',
  ],
  [
    'a migration importing the live database code',
    'src/db/migrations/0099_probe.ts',
    "import { isUniqueViolation } from '../errors.js'\nexport const probe = isUniqueViolation\n",
    'import-x/no-restricted-paths',
  ],
  [
    'a primitive importing a service other than the shared vocabulary',
    'src/auth/probe.ts',
    "import { createAuditService } from '../services/audit.js'\nexport const probe = createAuditService\n",
    'import-x/no-restricted-paths',
  ],
  [
    'a plugin importing a route',
    'src/plugins/app/probe.ts',
    "import authRoutes from '../../routes/auth/index.js'\nexport const probe = authRoutes\n",
    'import-x/no-restricted-paths',
  ],
  [
    'a route importing from a plugin',
    'src/routes/probe.ts',
    "import { bearerToken } from '../plugins/app/auth.js'\nexport const probe = bearerToken\n",
    'import-x/no-restricted-paths',
  ],
  [
    'a function over 60 lines',
    'src/services/probe.ts',
    `export function probe(values: number[]) {\n${'  values.push(1)\n'.repeat(61)}}\n`,
    'max-lines-per-function',
  ],
  [
    'a module over 250 lines',
    'src/services/probe.ts',
    Array.from({ length: 251 }, (_, index) => `export const value${index} = ${index}\n`).join(''),
    'max-lines',
  ],
]

const allowed: [what: string, file: string, code: string][] = [
  [
    'a route importing a service',
    'src/routes/probe.ts',
    "import { notFound } from '../services/errors.js'\nexport const probe = notFound\n",
  ],
  [
    'a service importing a repository',
    'src/services/probe.ts',
    "import type { Repositories } from '../repositories/index.js'\nexport type Probe = Repositories\n",
  ],
  [
    'a primitive importing the shared vocabulary',
    'src/mail/probe.ts',
    "import type { ServiceLogger } from '../services/context.js'\nexport type Probe = ServiceLogger\n",
  ],
]

describe('lint: the layers', () => {
  for (const [what, file, code, rule] of refused)
    test(`refuses ${what}`, { timeout: 60_000 }, async () => {
      assert.deepEqual(await problemsOf(file, code), [rule])
    })
  for (const [what, file, code] of allowed)
    test(`allows ${what}`, { timeout: 60_000 }, async () => {
      assert.deepEqual(await problemsOf(file, code), [])
    })
})
