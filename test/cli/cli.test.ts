import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { before, describe, test } from 'node:test'
import { buildApp } from '../../src/app.js'
import { openDatabase } from '../../src/db/open.js'
import { parseDatabaseUrl } from '../../src/db/target.js'
import { testConfig } from '../support/app.js'
import { runCliProcess, workDir, type CliResult } from './support.js'

const SECRET = 'cli-test-secret-key-0123456789-abcdefghij'

type Result = CliResult

/** A fresh SQLite database URL (the file does not exist yet). */
function freshDatabaseUrl(): string {
  return `sqlite:///${path.join(workDir(), 'x.db')}`
}

/** Runs the CLI as a user would, with only the variables given (plus PATH and HOME). */
function runCli(
  args: string[],
  options: { databaseUrl: string; env?: Record<string, string>; input?: string; closeStdout?: boolean },
): Promise<Result> {
  return runCliProcess(args, {
    cwd: workDir(),
    env: { NODE_ENV: 'test', SECRET_KEY: SECRET, DATABASE_URL: options.databaseUrl, ...options.env },
    input: options.input,
    closeStdout: options.closeStdout,
  })
}

/** A failure a person can act on: a non-zero exit and one `error:` line, without a stack trace. */
function assertOneLineError(result: Result, pattern?: RegExp) {
  assert.notEqual(result.code, 0, `expected a failure; stdout: ${result.stdout}`)
  assert.equal(result.signal, null, 'the CLI exited by itself')
  const lines = result.stderr.trim().split('\n')
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${result.stderr}`)
  assert.match(lines[0]!, /^error: \S/)
  assert.doesNotMatch(result.stderr, / {4}at /)
  if (pattern) assert.match(lines[0]!, pattern)
}

/** Logs in through the real POST /login of an app built on `databaseUrl`; returns /current-user. */
async function loginAs(databaseUrl: string, username: string, password: string) {
  const app = await buildApp(testConfig({ DATABASE_URL: databaseUrl }), { logger: false })
  try {
    const login = await app.inject({
      method: 'POST',
      url: '/login',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ username, password }).toString(),
    })
    if (login.statusCode !== 200) return { status: login.statusCode, user: undefined }
    const token = login.json<{ access_token: string }>().access_token
    const me = await app.inject({ url: '/current-user', headers: { authorization: `Bearer ${token}` } })
    assert.equal(me.statusCode, 200)
    return { status: 200, user: me.json<{ name: string; email: string; role: string }>() }
  } finally {
    await app.close()
  }
}

async function countUsers(databaseUrl: string): Promise<number> {
  const { db } = openDatabase(parseDatabaseUrl(databaseUrl))
  try {
    const row = await db
      .selectFrom('users')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .executeTakeFirstOrThrow()
    return Number(row.n)
  } finally {
    await db.destroy()
  }
}

describe('cli: migrate', () => {
  const databaseUrl = freshDatabaseUrl()

  test('status on a fresh database lists 0001 as pending', async () => {
    const result = await runCli(['migrate', 'status'], { databaseUrl })
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /pending\s+0001_\w+/)
    assert.doesNotMatch(result.stdout, /up to date/)
  })

  test('migrate applies it', async () => {
    const result = await runCli(['migrate'], { databaseUrl })
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /applied 0001_\w+/)
  })

  test('status then says the database is up to date', async () => {
    const result = await runCli(['migrate', 'status'], { databaseUrl })
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /applied \S+\s+0001_\w+/)
    assert.doesNotMatch(result.stdout, /pending/)
    assert.match(result.stdout, /up to date/)
  })

  test('migrating again changes nothing', async () => {
    const result = await runCli(['migrate', 'up'], { databaseUrl })
    assert.equal(result.code, 0, result.stderr)
    assert.doesNotMatch(result.stdout, /applied/)
    assert.match(result.stdout, /up to date/)
  })

  test('the migrated database holds the tables the server uses', async () => {
    assert.equal(await countUsers(databaseUrl), 0)
  })

  test('an unknown migrate action → exit 2 with one line', async () => {
    const result = await runCli(['migrate', 'sideways'], { databaseUrl })
    assert.equal(result.code, 2)
    assertOneLineError(result, /sideways/)
  })
})

describe('cli: create-admin', () => {
  const databaseUrl = freshDatabaseUrl()
  const password = 'a long and unusual pass phrase 8472'

  before(async () => {
    const migrated = await runCli(['migrate'], { databaseUrl })
    assert.equal(migrated.code, 0, migrated.stderr)
  })

  test('with the password on stdin, creates an admin who can log in', async () => {
    const result = await runCli(['create-admin', '--email', 'boss@example.com', '--name', 'boss'], {
      databaseUrl,
      input: `${password}\n`,
    })
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /boss@example\.com/)
    assert.equal(result.stdout.includes(password), false, 'the password is never printed')

    const { status, user } = await loginAs(databaseUrl, 'boss@example.com', password)
    assert.equal(status, 200)
    assert.equal(user?.role, 'admin')
    assert.equal(user?.name, 'boss')
    assert.equal((await loginAs(databaseUrl, 'boss', password)).user?.email, 'boss@example.com')
  })

  test('with ADMIN_PASSWORD in the environment, creates an admin too', async () => {
    const result = await runCli(['create-admin', '--email', 'chief@example.com', '--name', 'chief'], {
      databaseUrl,
      env: { ADMIN_PASSWORD: password },
    })
    assert.equal(result.code, 0, result.stderr)
    const { status, user } = await loginAs(databaseUrl, 'chief@example.com', password)
    assert.equal(status, 200)
    assert.equal(user?.role, 'admin')
  })

  test('a password that is too short is refused with one error line, and nobody is created', async () => {
    const before = await countUsers(databaseUrl)
    const result = await runCli(['create-admin', '--email', 'short@example.com', '--name', 'short'], {
      databaseUrl,
      input: 'short\n',
    })
    assertOneLineError(result, /password/)
    assert.equal(await countUsers(databaseUrl), before)
    assert.equal((await loginAs(databaseUrl, 'short@example.com', 'short')).status, 401)
  })

  test('an email that is taken is refused with one error line', async () => {
    const result = await runCli(['create-admin', '--email', 'BOSS@example.com', '--name', 'other'], {
      databaseUrl,
      input: `${password}\n`,
    })
    assertOneLineError(result)
  })

  test('a --name with "@" (in any form) is refused with one error line, and nobody is created', async () => {
    const before = await countUsers(databaseUrl)
    for (const name of ['squat@example.com', 'squat\uFF20example.com']) {
      const result = await runCli(['create-admin', '--email', 'squat@example.com', '--name', name], {
        databaseUrl,
        input: `${password}\n`,
      })
      assertOneLineError(result, /name .*"@"/)
    }
    assert.equal(await countUsers(databaseUrl), before)
  })

  test('without --email → one error line', async () => {
    const result = await runCli(['create-admin', '--name', 'nobody'], { databaseUrl, input: `${password}\n` })
    assertOneLineError(result, /--email/)
  })

  test('without a password (empty stdin) → one error line', async () => {
    const result = await runCli(['create-admin', '--email', 'none@example.com'], { databaseUrl, input: '' })
    assertOneLineError(result, /password/i)
  })

  test('on a fresh database, create-admin applies the migrations itself', async () => {
    const fresh = freshDatabaseUrl()
    const result = await runCli(['create-admin', '--email', 'first@example.com'], {
      databaseUrl: fresh,
      env: { ADMIN_PASSWORD: password },
    })
    assert.equal(result.code, 0, result.stderr)
    assert.equal((await loginAs(fresh, 'first@example.com', password)).user?.role, 'admin')
  })
})

describe('cli: openapi and usage', () => {
  test('openapi prints the OpenAPI document as JSON, without touching the database', async () => {
    const file = path.join(workDir(), 'untouched.db')
    const result = await runCli(['openapi'], { databaseUrl: `sqlite:///${file}` })
    assert.equal(result.code, 0, result.stderr)
    const doc = JSON.parse(result.stdout) as { openapi: string; paths: Record<string, unknown> }
    assert.equal(doc.openapi, '3.1.0')
    assert.ok(doc.paths['/login'], 'POST /login is documented')
    assert.ok(doc.paths['/product/{id}'], 'the products are documented')
    assert.equal(existsSync(file), false, 'no database file is created')
  })

  test("the README's openapi command, run as written, writes a file of JSON alone", async () => {
    const line = readFileSync('README.md', 'utf8')
      .split('\n')
      .find((text) => /openapi > openapi\.json/.test(text))
    assert.ok(line, 'the README shows how to write openapi.json')
    const command = line.replace(/\s+#.*$/, '').replace('openapi.json', path.join(workDir(), 'openapi.json'))
    const file = command.split('> ')[1]!
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
      const child = spawn('sh', ['-c', command], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATABASE_URL: freshDatabaseUrl() },
        stdio: ['ignore', 'ignore', 'pipe'],
        timeout: 60_000,
      })
      let stderr = ''
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
      child.on('error', reject)
      child.on('close', (code) => resolve({ code, stderr }))
    })
    assert.equal(result.code, 0, result.stderr)
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { openapi: string }
    assert.equal(doc.openapi, '3.1.0')
  })

  test('openapi into a pipe closed early (| head) ends quietly, without a stack trace', async () => {
    const result = await runCli(['openapi'], { databaseUrl: freshDatabaseUrl(), closeStdout: true })
    assert.equal(result.signal, null, 'the CLI exited by itself')
    assert.equal(result.stderr, '')
    assert.equal(result.code, 0)
  })

  test('an unknown command → exit 2 with the usage', async () => {
    const result = await runCli(['frobnicate'], { databaseUrl: freshDatabaseUrl() })
    assert.equal(result.code, 2)
    assert.match(result.stderr, /^error: .*frobnicate/)
    assert.match(result.stderr, /Usage:/)
    assert.match(result.stderr, /migrate/)
    assert.match(result.stderr, /create-admin/)
    assert.doesNotMatch(result.stderr, / {4}at /)
  })

  test('help prints the usage and succeeds', async () => {
    const result = await runCli(['--help'], { databaseUrl: freshDatabaseUrl() })
    assert.equal(result.code, 0)
    assert.match(result.stdout, /Usage:/)
  })

  test('a bad configuration → one error line naming the variable', async () => {
    const result = await runCli(['migrate', 'status'], { databaseUrl: 'ftp://x' })
    assertOneLineError(result, /^error: DATABASE_URL\b/)
  })
})

describe('cli: seed', () => {
  test('adds the asked number of users and products, shows progress, and the users can log in', async () => {
    const databaseUrl = freshDatabaseUrl()
    const result = await runCli(
      ['seed', '--products', '4500', '--users', '3', '--password', 'seed pass 123'],
      {
        databaseUrl,
      },
    )
    assert.equal(result.code, 0, result.stderr)
    // Progress goes to stderr (a line per tenth when it is not a terminal), the summary to stdout.
    assert.match(result.stderr, /seeding products \[#+-*\]\s+\d+% \d+\/4500/)
    assert.match(result.stderr, /seeding products: 4500 in [\d.]+s/)
    const email = /Log in as (\S+) with the password "seed pass 123"/.exec(result.stdout)?.[1]
    assert.ok(email, result.stdout)

    const { db } = openDatabase(parseDatabaseUrl(databaseUrl))
    try {
      const products = await db
        .selectFrom('products')
        .select((eb) => [
          eb.fn.countAll<number>().as('n'),
          eb.fn.countAll<number>().filterWhere('owner_id', 'is', null).as('orphans'),
        ])
        .executeTakeFirstOrThrow()
      assert.equal(Number(products.n), 4500)
      assert.equal(Number(products.orphans), 0, 'every product has an owner')
      const sample = await db
        .selectFrom('products')
        .select(['product_id', 'search_text', 'version'])
        .limit(1)
        .executeTakeFirstOrThrow()
      assert.equal(sample.version, 1)
      assert.ok(sample.search_text.includes(sample.product_id.toLowerCase()), 'search text is written too')
    } finally {
      await db.destroy()
    }
    assert.equal(await countUsers(databaseUrl), 3)
    const login = await loginAs(databaseUrl, email, 'seed pass 123')
    assert.equal(login.status, 200)

    // A second run adds to the first instead of colliding with its SKUs or names.
    const again = await runCli(['seed', '--products', '10', '--users', '1'], { databaseUrl })
    assert.equal(again.code, 0, again.stderr)
    assert.equal(await countUsers(databaseUrl), 4)
  })

  test('bad numbers are usage errors (exit 2) with one line', async () => {
    for (const args of [
      ['seed', '--products', 'many'],
      ['seed', '--products', '-5'],
      ['seed', '--products', '10', '--users', '0'],
    ]) {
      const result = await runCli(args, { databaseUrl: freshDatabaseUrl() })
      assertOneLineError(result)
      assert.equal(result.code, 2)
    }
  })
})
