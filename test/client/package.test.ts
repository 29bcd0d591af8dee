/**
 * The typed client as another project gets it: `npm pack` of client/ (which builds it), installed
 * from the tarball into a temporary project with its one dependency (openapi-fetch), type-checked
 * there against its built types, and run against a listening server: a login, a protected route,
 * and a wrong password that surfaces as an ApiError instead of passing silently.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { register, testConfig, uniqueUser } from '../support/app.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

function run(command: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 180_000,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

const CONSUMER_TS = `import { ApiError, bearerToken, createApiClient, formEncoded, orThrow } from 'fastauth-api-client'

export async function main(baseUrl: string, username: string, password: string): Promise<string> {
  const api = createApiClient(baseUrl)
  const tokens = await orThrow(api.POST('/login', { body: { username, password }, ...formEncoded }))
  const token: string = tokens.access_token
  api.use(bearerToken(() => token))
  const me = await orThrow(api.GET('/current-user'))
  const email: string = me.email
  try {
    await orThrow(api.POST('/login', { body: { username, password: password + 'x' }, ...formEncoded }))
    return 'a wrong password passed'
  } catch (error) {
    if (!(error instanceof ApiError)) throw error
    return JSON.stringify({ email, wrongPassword: { status: error.status, detail: error.problem?.detail } })
  }
}
`

describe('the typed client, installed in another project', () => {
  let app: FastifyInstance
  let project: string
  const user = uniqueUser()

  before(async () => {
    app = await buildApp(testConfig({ DATABASE_URL: 'sqlite::memory:' }), { logger: false })
    await app.listen({ host: '127.0.0.1', port: 0 })
    await register(app, user)
    project = mkdtempSync(path.join(tmpdir(), 'fastauth-client-consumer-'))
  })
  after(async () => {
    await app?.close()
    if (project) rmSync(project, { recursive: true, force: true })
  })

  test(
    'packs, installs, type-checks and calls the API; a wrong password is an ApiError',
    { timeout: 300_000 },
    async () => {
      const packed = await run('npm', ['pack', '--pack-destination', project], path.join(ROOT, 'client'))
      assert.equal(packed.code, 0, packed.stderr)
      const tarball = readdirSync(project).find((name) => name.endsWith('.tgz'))
      assert.ok(tarball, packed.stdout)

      writeFileSync(
        path.join(project, 'package.json'),
        JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
      )
      const installed = await run(
        'npm',
        ['install', '--prefer-offline', '--no-audit', '--no-fund', `./${tarball}`],
        project,
      )
      assert.equal(installed.code, 0, installed.stderr)
      assert.deepEqual(readdirSync(path.join(project, 'node_modules', 'fastauth-api-client')).sort(), [
        'README.md',
        'dist',
        'package.json',
      ])

      // Its types, from the package's own dist: a typo in a path or a field would not compile.
      writeFileSync(path.join(project, 'consumer.ts'), CONSUMER_TS)
      writeFileSync(
        path.join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            target: 'ES2022',
            strict: true,
            lib: ['ES2023', 'DOM'],
            types: [],
            skipLibCheck: false,
            outDir: 'out',
          },
          files: ['consumer.ts'],
        }),
      )
      const compiled = await run(process.execPath, [TSC, '-p', '.'], project)
      assert.equal(compiled.code, 0, compiled.stdout + compiled.stderr)

      const address = app.server.address() as { port: number }
      const ran = await run(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { main } from './out/consumer.js'; console.log(await main(process.argv[1], process.argv[2], process.argv[3]))`,
          `http://127.0.0.1:${address.port}`,
          user.email,
          user.password,
        ],
        project,
      )
      assert.equal(ran.code, 0, ran.stderr)
      assert.deepEqual(JSON.parse(ran.stdout), {
        email: user.email,
        wrongPassword: { status: 401, detail: 'Incorrect username or password.' },
      })
    },
  )
})
