/**
 * What the signing algorithm costs per request: the server's own token service (signing keys,
 * `kid` lookup, claim checks) signing and verifying access tokens back to back, for each
 * JWT_ALGORITHM, against HS256 (the default) measured in the same run, in alternating rounds so
 * that a busy machine slows every algorithm alike. A verification happens on every authenticated
 * request; a signature at each login and refresh.
 * Usage: npm run bench:signing  (BENCH_SECONDS=2 per algorithm and round, BENCH_ROUNDS=3)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'
import { loadConfig, type JwtAlgorithm } from '../src/config.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const ALGORITHMS: JwtAlgorithm[] = ['HS256', 'EdDSA', 'ES256', 'RS256', 'PS256']

async function appFor(algorithm: JwtAlgorithm, dir: string): Promise<FastifyInstance> {
  const app = await buildApp(
    loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      SECRET_KEY: 'bench-secret-key-that-is-long-enough-0123456789',
      DATABASE_URL: `sqlite:///${path.join(dir, `${algorithm}.db`)}`,
      JWT_ALGORITHM: algorithm,
    }),
    { logger: false },
  )
  await app.ready()
  return app
}

/** Operations per second of `work`, run back to back for SECONDS. */
async function rate(work: () => Promise<unknown>): Promise<number> {
  const until = performance.now() + SECONDS * 1000
  let done = 0
  while (performance.now() < until) {
    for (let i = 0; i < 50; i++) await work()
    done += 50
  }
  return done / SECONDS
}

const dir = mkdtempSync(path.join(tmpdir(), 'fastauth-bench-signing-'))
const totals = new Map(ALGORITHMS.map((algorithm) => [algorithm, { sign: 0, verify: 0 }]))
try {
  const apps = new Map<JwtAlgorithm, FastifyInstance>()
  for (const algorithm of ALGORITHMS) apps.set(algorithm, await appFor(algorithm, dir))
  for (let round = 1; round <= ROUNDS; round++) {
    for (const algorithm of ALGORITHMS) {
      const { tokens } = apps.get(algorithm)!
      const { token } = await tokens.issueAccessToken({ id: 1, role: 'user' }, 'bench-session', ['pwd'])
      const total = totals.get(algorithm)!
      total.sign += await rate(() =>
        tokens.issueAccessToken({ id: 1, role: 'user' }, 'bench-session', ['pwd']),
      )
      total.verify += await rate(() => tokens.verifyAccessToken(token))
      process.stdout.write(`\rround ${round}/${ROUNDS}: ${algorithm}      `)
    }
  }
  process.stdout.write('\n')
  for (const app of apps.values()) await app.close()
} finally {
  rmSync(dir, { recursive: true, force: true })
}

const reference = totals.get('HS256')!
const fmt = (value: number) => Math.round(value / ROUNDS).toLocaleString('en')
const pct = (value: number, of: number) => `${Math.round((value / of) * 100)} %`
console.log(
  `\n${SECONDS} s × ${ROUNDS} alternating rounds per algorithm and operation; one process, one core.\n`,
)
console.log('| JWT_ALGORITHM | verifications/s | ÷ HS256 | µs each | signatures/s | ÷ HS256 | µs each |')
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const [algorithm, total] of totals)
  console.log(
    `| ${algorithm} | ${fmt(total.verify)} | ${pct(total.verify, reference.verify)} | ${Math.round((1e6 * ROUNDS) / total.verify)} | ${fmt(total.sign)} | ${pct(total.sign, reference.sign)} | ${Math.round((1e6 * ROUNDS) / total.sign)} |`,
  )
