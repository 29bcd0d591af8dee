import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../../src/app.js'
import { assertProblem, testConfig } from '../../support/app.js'
import { freePort, redisServerMissing, startRedis, stopRedis, until } from '../../support/processes.js'

describe('/readyz with Redis configured', { skip: redisServerMissing }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-ready-'))
  let redis: ChildProcess | undefined
  let app: FastifyInstance | undefined
  after(async () => {
    await stopRedis(redis)
    await app?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  test('answers 503 with Retry-After while Redis is away, and 200 again when it is back', async () => {
    const port = await freePort()
    redis = await startRedis(port)
    app = await buildApp(
      testConfig({
        DATABASE_URL: `sqlite:///${path.join(dir, 'ready.db')}`,
        REDIS_URL: `redis://127.0.0.1:${port}`,
      }),
      { logger: false },
    )
    await app.ready()
    assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200)

    await stopRedis(redis)
    const down = await app.inject({ url: '/readyz' })
    const problem = assertProblem(down, 503)
    assert.match(problem.detail, /Redis/)
    assert.ok(Number(down.headers['retry-after']) > 0)
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'the process itself is alive')

    redis = await startRedis(port)
    const ready = app
    await until(
      async () => (await ready.inject({ url: '/readyz' })).statusCode === 200,
      'ready again once Redis is back',
    )
  })
})
