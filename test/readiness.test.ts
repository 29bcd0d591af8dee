import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'
import { assertProblem, testConfig } from './helper.js'

const REDIS_SERVER = '/usr/bin/redis-server'

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

describe(
  '/readyz with Redis configured',
  { skip: existsSync(REDIS_SERVER) ? undefined : 'redis-server is not installed' },
  () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-ready-'))
    let redis: ChildProcess | undefined
    let app: FastifyInstance | undefined
    after(async () => {
      redis?.kill('SIGKILL')
      await app?.close()
      rmSync(dir, { recursive: true, force: true })
    })

    test('answers 503 with Retry-After while Redis is away, and 200 again when it is back', async () => {
      const port = await freePort()
      const startRedis = async () => {
        redis = spawn(
          REDIS_SERVER,
          ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
          {
            stdio: 'ignore',
          },
        )
        for (let attempt = 0; attempt < 50; attempt++) {
          const probe = await fetch(`http://127.0.0.1:${port}`).catch((error: Error) => error)
          // Redis answers an HTTP request by closing the connection; any answer but a refusal means it listens.
          if (!(probe instanceof Error && /ECONNREFUSED/.test(String(probe.cause ?? probe)))) return
          await sleep(100)
        }
      }
      await startRedis()
      app = await buildApp(
        testConfig({
          DATABASE_URL: `sqlite:///${path.join(dir, 'ready.db')}`,
          REDIS_URL: `redis://127.0.0.1:${port}`,
        }),
        { logger: false },
      )
      await app.ready()
      assert.equal((await app.inject({ url: '/readyz' })).statusCode, 200)

      redis!.kill('SIGKILL')
      await new Promise((resolve) => redis!.once('exit', resolve))
      const down = await app.inject({ url: '/readyz' })
      const problem = assertProblem(down, 503)
      assert.match(problem.detail, /Redis/)
      assert.ok(Number(down.headers['retry-after']) > 0)
      assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'the process itself is alive')

      await startRedis()
      let status = 0
      for (let attempt = 0; attempt < 60 && status !== 200; attempt++) {
        status = (await app.inject({ url: '/readyz' })).statusCode
        if (status !== 200) await sleep(100)
      }
      assert.equal(status, 200, 'ready again once Redis is back')
    })
  },
)
