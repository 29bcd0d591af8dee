import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { freePort } from '../support/processes.js'
import {
  killServers,
  spawnServerProcess,
  startServerProcess,
  type ServerProcess,
} from '../support/server-process.js'

const SECRET = 'server-test-secret-key-0123456789-abcdefg'
/** Safety nets only: a hung server fails its test instead of hanging the suite. */
const START_TIMEOUT_MS = 60_000
const EXIT_TIMEOUT_MS = 30_000

const workDirs: string[] = []
function workDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-server-'))
  workDirs.push(dir)
  return dir
}

after(async () => {
  await killServers()
  for (const dir of workDirs) rmSync(dir, { recursive: true, force: true })
})

/** Starts a server with only the given variables, in a folder of its own, and waits until it listens. */
const startServer = (env: Record<string, string>, cwd = workDir()) =>
  startServerProcess(env, { cwd, bare: true })

/** Sends `signal` and expects a clean exit. */
async function stop(server: ServerProcess, signal: NodeJS.Signals = 'SIGTERM') {
  server.child.kill(signal)
  const exit = await server.waitForExit(EXIT_TIMEOUT_MS)
  assert.deepEqual(exit, { code: 0, signal: null }, `stderr: ${server.output.stderr}`)
}

/** Starts a server that must fail: a non-zero exit and one `error:` line, with no stack trace. */
async function startAndFail(env: Record<string, string>): Promise<string> {
  const server = spawnServerProcess(env, { cwd: workDir(), bare: true })
  const exit = await server.waitForExit(START_TIMEOUT_MS)
  const { stdout, stderr } = server.output
  assert.notEqual(exit.code, 0, `expected a failure; stdout: ${stdout}`)
  assert.equal(exit.signal, null, 'the server exited by itself')
  assert.doesNotMatch(stdout, /listening/)
  const lines = stderr.trim().split('\n')
  assert.equal(lines.length, 1, `expected one line on stderr, got:\n${stderr}`)
  assert.match(lines[0]!, /^error: \S/)
  assert.doesNotMatch(stderr, / {4}at /, 'no stack trace')
  return lines[0]!
}

const sqliteUrl = (file: string) => `sqlite:///${file}`

describe('server: start and stop', () => {
  test('starts, prints where it listens and where the docs are, answers, and exits 0 on SIGTERM', async () => {
    const server = await startServer({
      SECRET_KEY: SECRET,
      DATABASE_URL: sqliteUrl(path.join(workDir(), 'x.db')),
    })
    try {
      assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/)
      assert.match(server.output.stdout, /\/docs/)

      const health = await fetch(`${server.url}/healthz`)
      assert.equal(health.status, 200)
      assert.deepEqual(await health.json(), { status: 'ok' })
      const ready = await fetch(`${server.url}/readyz`)
      assert.equal(ready.status, 200)

      await stop(server, 'SIGTERM')
    } finally {
      server.child.kill('SIGKILL')
    }
  })

  test('exits 0 on SIGINT too', async () => {
    const server = await startServer({
      SECRET_KEY: SECRET,
      DATABASE_URL: sqliteUrl(path.join(workDir(), 'x.db')),
    })
    try {
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200)
      await stop(server, 'SIGINT')
    } finally {
      server.child.kill('SIGKILL')
    }
  })

  test('a SQLite file in a folder that does not exist yet is created, migrated and served', async () => {
    const file = path.join(workDir(), 'not', 'yet', 'there', 'app.db')
    const server = await startServer({ SECRET_KEY: SECRET, DATABASE_URL: sqliteUrl(file) })
    try {
      assert.ok(existsSync(file), `${file} was created`)
      // Registration works, so the tables exist.
      const registered = await fetch(`${server.url}/users/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          name: 'first',
          email: 'first@example.com',
          password: 'an unusual pass phrase 93',
        }),
      })
      assert.equal(registered.status, 201)
      await stop(server)
    } finally {
      server.child.kill('SIGKILL')
    }
  })

  test('with no configuration at all, it uses ./data: a SQLite file and a development key made once', async () => {
    const cwd = workDir()
    const first = await startServer({ NODE_ENV: 'development' }, cwd)
    let key: string
    try {
      assert.ok(existsSync(path.join(cwd, 'data', 'app.db')), 'data/app.db is created')
      key = readFileSync(path.join(cwd, 'data', 'secret_key'), 'utf8').trim()
      assert.ok(Buffer.byteLength(key) >= 32)
      assert.match(first.output.stderr, /SECRET_KEY/, 'a warning says the key was generated')
      assert.equal(first.output.stderr.includes(key), false, 'the key itself is never printed')
      assert.equal((await fetch(`${first.url}/healthz`)).status, 200)
      await stop(first)
    } finally {
      first.child.kill('SIGKILL')
    }

    const second = await startServer({ NODE_ENV: 'development' }, cwd)
    try {
      assert.equal(readFileSync(path.join(cwd, 'data', 'secret_key'), 'utf8').trim(), key)
      assert.doesNotMatch(second.output.stderr, /generated/, 'the key is generated only once')
      await stop(second)
    } finally {
      second.child.kill('SIGKILL')
    }
  })
})

describe('server: a start that cannot succeed is one line on stderr', () => {
  test('PORT=abc', async () => {
    const line = await startAndFail({ SECRET_KEY: SECRET, DATABASE_URL: 'sqlite::memory:', PORT: 'abc' })
    assert.match(line, /^error: PORT\b/)
  })

  test('NODE_ENV=production without SECRET_KEY', async () => {
    const line = await startAndFail({ NODE_ENV: 'production', DATABASE_URL: 'sqlite::memory:' })
    assert.match(line, /^error: SECRET_KEY\b/)
  })

  test('a SECRET_KEY that is too short, without repeating it', async () => {
    const line = await startAndFail({ SECRET_KEY: 'tiny-secret-value', DATABASE_URL: 'sqlite::memory:' })
    assert.match(line, /^error: SECRET_KEY\b/)
    assert.equal(line.includes('tiny-secret-value'), false)
  })

  test('the port is already in use', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve, reject) => {
      blocker.once('error', reject)
      blocker.listen(0, '127.0.0.1', resolve)
    })
    try {
      const port = (blocker.address() as AddressInfo).port
      const line = await startAndFail({
        SECRET_KEY: SECRET,
        DATABASE_URL: 'sqlite::memory:',
        PORT: String(port),
      })
      assert.match(line, /^error: PORT\b/)
      assert.ok(line.includes(String(port)), `the line names the port: ${line}`)
    } finally {
      await new Promise((resolve) => blocker.close(resolve))
    }
  })

  test('an unreachable database names DATABASE_URL, without its password', async () => {
    const line = await startAndFail({
      SECRET_KEY: SECRET,
      DATABASE_URL: 'postgres://postgres:hunter2-secret@127.0.0.1:1/x',
    })
    assert.match(line, /^error: DATABASE_URL\b/)
    assert.equal(line.includes('hunter2-secret'), false)
  })

  test('a malformed DATABASE_URL', async () => {
    const line = await startAndFail({ SECRET_KEY: SECRET, DATABASE_URL: 'sqlite:foo' })
    assert.match(line, /^error: DATABASE_URL\b/)
  })

  test('a database that closes the connection at once says what happened, never "(undefined)"', async () => {
    // What a proxy with nothing behind it does: accept, then close before the database would speak.
    // Read to the end as well, so that each socket sees its client go and closes.
    const closer = createServer((socket) => socket.end().resume())
    await new Promise<void>((resolve) => closer.listen(0, '127.0.0.1', resolve))
    try {
      const port = (closer.address() as AddressInfo).port
      for (const scheme of ['postgres', 'mysql']) {
        const line = await startAndFail({
          SECRET_KEY: SECRET,
          DATABASE_URL: `${scheme}://root@127.0.0.1:${port}/app`,
        })
        assert.match(line, /^error: DATABASE_URL: cannot reach .+ \(the connection was closed before/, line)
        assert.equal(line.includes('undefined'), false, line)
      }
    } finally {
      await new Promise((resolve) => closer.close(resolve))
    }
  })

  test('a database that does not exist says how to create it, with the tool of its engine', async (t) => {
    const engines = [
      [
        'postgres',
        process.env.TEST_POSTGRES_URL,
        /create it first \(e\.g\. createdb fastauth_missing_\d+, or CREATE DATABASE/,
      ],
      [
        'mysql',
        process.env.TEST_MYSQL_URL,
        /create it first \(e\.g\. mysql -e 'CREATE DATABASE `fastauth_missing_\d+`/,
      ],
    ] as const
    for (const [engine, url, expected] of engines) {
      if (!url) {
        t.diagnostic(`${engine}: skipped, its TEST_*_URL is not set`)
        continue
      }
      const missing = new URL(url)
      missing.pathname = `/fastauth_missing_${Date.now()}`
      const line = await startAndFail({ SECRET_KEY: SECRET, DATABASE_URL: missing.href })
      assert.match(line, /^error: DATABASE_URL: .+ does not exist; /, line)
      assert.match(line, expected, line)
    }
  })

  test('a Redis that refuses the connection is reported as refused, not as silent', async () => {
    const line = await startAndFail({
      SECRET_KEY: SECRET,
      DATABASE_URL: 'sqlite::memory:',
      REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    })
    assert.match(line, /^error: REDIS_URL: cannot reach Redis at 127\.0\.0\.1:\d+ \(connection refused/, line)
    assert.equal(line.includes('no answer'), false, line)
  })

  test('a SQLite path whose folder cannot be created names DATABASE_URL', async () => {
    const notAFolder = path.join(workDir(), 'a-file')
    writeFileSync(notAFolder, '')
    const line = await startAndFail({
      SECRET_KEY: SECRET,
      DATABASE_URL: sqliteUrl(path.join(notAFolder, 'app.db')),
    })
    assert.match(line, /^error: DATABASE_URL\b/)
  })
})
