/**
 * `npm run bench` (issues 7 and 17): our server against a bare reference (Fastify + jose HS256 +
 * one prepared query on better-sqlite3, or on pg for PostgreSQL), scenario by scenario, back to
 * back in one run, on SQLite and on PostgreSQL: req/s, p50 and p99, ours ÷ reference, POST /login
 * against the machine's raw argon2id rate, reads during a login storm, peak memory and cold start;
 * and, on SQLite, ours ÷ the FastAPI seed where BENCH_SEED_DIR names a checkout of it.
 * Writes the figures to docs/performance.md, which explains the method.
 *
 *   BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test npm run bench
 *   BENCH_SEED_DIR=../fastapi-seed npm run bench         # with the seed (bench/fastapi-seed.ts)
 *   npm run bench -- --engines sqlite --quick            # short runs, printed only
 *   npm run bench -- --engines sqlite --profile storm    # our server under one scenario, --cpu-prof
 *
 * PostgreSQL runs when BENCH_POSTGRES_URL (or TEST_POSTGRES_URL) names a server; the bench
 * creates and drops databases of its own there. The seed runs when BENCH_SEED_DIR is set and a
 * python3 has its modules (BENCH_SEED_PYTHON names one; else python3, then /usr/bin/python3).
 *
 * Options:
 *   --engines sqlite,postgres
 *   --scenarios get-product,get-user,list-products,create-product,login,storm,durability
 *     (durability: POST /product/ with SQLite's synchronous FULL against NORMAL, SQLite only)
 *   --duration <s> (12, measured per server and scenario)   --rounds <n> (3, alternating rounds)
 *   --warmup <s> (3)   --connections <n> (20)   --login-connections <n> (8)   --products <n> (10000)
 *   --read-rate <n> (500)   --storm-clients <n> (50)   --cold-starts <n> (5)
 *   --quick: 4 s in 2 rounds, 1 s warm-up, 3 cold starts; prints without writing (unless --write)
 *   --no-write   --preliminary (the figures are marked as taken on a busy machine)   --skip-build
 *   --profile <scenario>: our server alone under one scenario with --cpu-prof; prints the summary
 *     (bench/profile-summary.ts) and keeps the .cpuprofile in bench/profiles/
 *   --ours <path>: another build of our server's entry (e.g. a build of an older commit)
 *   --node-flags "<flags>" and --env NAME=value (repeatable): for our server, in experiments
 *     (--env SQLITE_SYNCHRONOUS=normal: both servers run NORMAL in every other scenario)
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { HASHING_CONCURRENCY, hashPassword } from '../src/auth/passwords.js'
import { BENCH_PASSWORD, prepareDatabases, type BenchEngine } from './databases.js'
import { checkSeedCheckout, findSeedPython, prepareFastapiSeed, type SeedPython } from './fastapi-seed.js'
import { compileScript, measureFsync, ROOT } from './processes.js'
import { summariseProfile } from './profile-summary.js'
import { benchSection, currentLoad, machine, writeBenchSection, type EngineReport } from './report.js'
import {
  describe,
  megabytes,
  percent,
  referenceName,
  runRawArgon2,
  runStorm,
  runSynchronousCost,
  runThroughput,
  runThroughputAlone,
  oursSynchronous,
  startSide,
  throughputScenarios,
  type BenchContext,
  type ScenarioRow,
  type SideResult,
  type Settings,
} from './scenarios.js'

const SCENARIOS = [
  'get-product',
  'get-user',
  'list-products',
  'create-product',
  'login',
  'storm',
  'durability',
] as const
type ScenarioKey = (typeof SCENARIOS)[number]
const USERS = 50

const { values: args } = parseArgs({
  options: {
    engines: { type: 'string' },
    scenarios: { type: 'string' },
    duration: { type: 'string' },
    rounds: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    'login-connections': { type: 'string' },
    products: { type: 'string' },
    'read-rate': { type: 'string' },
    'storm-clients': { type: 'string' },
    'cold-starts': { type: 'string' },
    quick: { type: 'boolean', default: false },
    write: { type: 'boolean' },
    'no-write': { type: 'boolean', default: false },
    preliminary: { type: 'boolean', default: false },
    'skip-build': { type: 'boolean', default: false },
    profile: { type: 'string' },
    ours: { type: 'string' },
    'node-flags': { type: 'string' },
    env: { type: 'string', multiple: true },
  },
})

const progress = (line: string) => process.stdout.write(`${line}\n`)
const number = (value: string | undefined, fallback: number, min = 1) => {
  if (value === undefined) return fallback
  const parsed = Number(value)
  if (!Number.isFinite(parsed) || parsed < min) throw new Error(`expected a number ≥ ${min}, got "${value}"`)
  return parsed
}

const quick = args.quick
const settings: Settings = {
  seconds: number(args.duration, quick ? 4 : 12),
  rounds: number(args.rounds, quick ? 2 : 3),
  warmupSeconds: number(args.warmup, quick ? 1 : 3),
  connections: number(args.connections, 20),
  // As issue 17 measured logins.
  loginConnections: number(args['login-connections'], 8),
  readRate: number(args['read-rate'], 500),
  stormClients: number(args['storm-clients'], 50),
}
const products = number(args.products, 10_000)
const coldStarts = number(args['cold-starts'], quick ? 3 : 5, 0)
const postgresUrl = process.env.BENCH_POSTGRES_URL ?? process.env.TEST_POSTGRES_URL
const engines = (args.engines ?? (postgresUrl ? 'sqlite,postgres' : 'sqlite')).split(',') as BenchEngine[]
for (const engine of engines)
  if (engine !== 'sqlite' && engine !== 'postgres') throw new Error(`unknown engine "${engine}"`)
if (engines.includes('postgres') && !postgresUrl)
  throw new Error('PostgreSQL needs BENCH_POSTGRES_URL or TEST_POSTGRES_URL')
if (!args.engines && !postgresUrl)
  progress('PostgreSQL skipped: set BENCH_POSTGRES_URL (or TEST_POSTGRES_URL) to include it')
const selected = (args.scenarios?.split(',') ?? [...SCENARIOS]) as ScenarioKey[]
for (const key of selected) if (!SCENARIOS.includes(key)) throw new Error(`unknown scenario "${key}"`)
const PROFILED = SCENARIOS.filter((key) => key !== 'durability')
if (args.profile && !PROFILED.includes(args.profile as (typeof PROFILED)[number]))
  throw new Error(`--profile: unknown scenario "${args.profile}" (one of ${PROFILED.join(', ')})`)
/** The FastAPI seed's checkout, and a python3 that can run it (else one line says why it is skipped). */
const seedCheckout = process.env.BENCH_SEED_DIR ? path.resolve(process.env.BENCH_SEED_DIR) : undefined
let seedPython: SeedPython | undefined
if (seedCheckout && !args.profile) {
  checkSeedCheckout(seedCheckout)
  const found = findSeedPython()
  if ('missing' in found) progress(`FastAPI seed skipped (BENCH_SEED_DIR is set): ${found.missing}`)
  else if (!engines.includes('sqlite'))
    progress(
      'FastAPI seed skipped: it runs on SQLite only (its database URL is fixed), and this run has no SQLite',
    )
  else seedPython = found
}
const write =
  !args['no-write'] &&
  !args.profile &&
  (args.write ?? (!quick && selected.length === SCENARIOS.length && coldStarts > 0))

/**
 * Our server runs as `npm start` runs it: the node flags of package.json's start script (if it
 * gives any) before dist/server.js.
 */
function startScriptFlags(): string[] {
  const start = (
    JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts.start
  const words = start?.split(/\s+/) ?? []
  if (words[0] !== 'node' || words.at(-1) !== 'dist/server.js') {
    progress(
      `the start script is not "node [flags] dist/server.js" (${start}); running dist/server.js without flags`,
    )
    return []
  }
  return words.slice(1, -1)
}

const oursServer = path.resolve(args.ours ?? path.join(ROOT, 'dist', 'server.js'))
const oursNodeFlags = [...startScriptFlags(), ...(args['node-flags']?.split(' ').filter(Boolean) ?? [])]
const oursEnv = Object.fromEntries(
  (args.env ?? []).map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
)
const oursCommand = `NODE_ENV=production RATE_LIMIT_PER_MINUTE=1000000 … node ${[...oursNodeFlags, path.relative(ROOT, oursServer)].join(' ')}`

const date = new Date()
const loadBefore = currentLoad()
const started = performance.now()
progress(`${machine()}; load average ${loadBefore.join(', ')}`)
progress(`our server: ${oursCommand}`)

if (!args['skip-build'] && !args.ours) {
  progress('… npm run build')
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' })
}
const referenceScript = compileScript('reference')
const argon2Script = compileScript('argon2-raw')
const profileDir = path.join(ROOT, 'bench', 'profiles')

/**
 * Raw argon2id, once for the run (it involves no database): with as many verifications in flight
 * as the login scenario has connections (the target's "at the same parallelism"), and at the
 * server's hashing bound.
 */
async function measureRawArgon2() {
  const passwordHash = await hashPassword(BENCH_PASSWORD)
  const run = (concurrency: number) => {
    progress(
      `… raw argon2id verify(), ${concurrency} in flight: ${settings.warmupSeconds}s warm-up + ${settings.seconds}s`,
    )
    const result = runRawArgon2(argon2Script, {
      passwordHash,
      password: BENCH_PASSWORD,
      concurrency,
      settings,
    })
    progress(`✓ raw argon2id, ${concurrency} in flight: ${Math.round(result.requestsPerSecond)} hashes/s`)
    return result
  }
  return { sameParallelism: run(settings.loginConnections), serverBound: run(HASHING_CONCURRENCY) }
}

async function coldStart(context: BenchContext) {
  const times = { ours: [] as number[], reference: [] as number[] }
  for (let i = 0; i < coldStarts; i++) {
    for (const side of ['ours', 'reference'] as const) {
      const server = await startSide(context, side, 'cold-start')
      times[side].push(server.startMs)
      await server.stop()
    }
  }
  if (coldStarts > 0) {
    const show = (values: number[]) => values.map((value) => value.toFixed(0)).join(', ')
    progress(
      `✓ ${context.db.engine} · cold start (ms): ours ${show(times.ours)}; reference ${show(times.reference)}`,
    )
  }
  return times
}

/** Measured with the durability rows: what one commit's sync costs on the database's disk. */
let fsyncLatency: { p50: number; p99: number } | undefined

async function benchEngine(
  context: BenchContext,
  raw: { sameParallelism: SideResult; serverBound: SideResult } | undefined,
): Promise<EngineReport> {
  const rows: ScenarioRow[] = []
  const memory = { ours: 0, oursScenario: '', reference: 0, referenceScenario: '' }
  const track = (scenario: string, ours: number, reference: number) => {
    if (ours > memory.ours) Object.assign(memory, { ours, oursScenario: scenario })
    if (reference > memory.reference) Object.assign(memory, { reference, referenceScenario: scenario })
  }
  const coldStartTimes = await coldStart(context)

  for (const scenario of throughputScenarios(context)) {
    if (!selected.includes(scenario.key as ScenarioKey)) continue
    const row = await runThroughput(context, scenario)
    rows.push(row)
    track(scenario.title, row.ours.peakRssBytes, row.reference.peakRssBytes)
    if (scenario.key === 'login' && raw) {
      const ratio = row.ours.requestsPerSecond / raw.sameParallelism.requestsPerSecond
      rows.push(
        {
          scenario: 'POST /login against raw argon2id',
          ours: row.ours,
          referenceName: `@node-rs/argon2 verify() alone, ${settings.loginConnections} in flight (as many as the logins' connections)`,
          reference: raw.sameParallelism,
          ratio: percent(ratio),
          target: { text: '≥ 90 % of raw hashes/s at the same parallelism', met: ratio >= 0.9 },
        },
        {
          scenario: `POST /login against raw argon2id at the server's bound`,
          ours: row.ours,
          referenceName: `@node-rs/argon2 verify() alone, ${HASHING_CONCURRENCY} in flight (the server's hashing bound)`,
          reference: raw.serverBound,
          ratio: percent(row.ours.requestsPerSecond / raw.serverBound.requestsPerSecond),
        },
      )
      progress(
        `✓ ${context.db.engine} · logins: ${percent(ratio)} of raw argon2id with ${settings.loginConnections} in flight`,
      )
    }
  }

  if (selected.includes('storm')) {
    const ours = await runStorm(context, 'ours', undefined)
    const reference = await runStorm(context, 'reference', ours.token)
    const o = ours.result
    const r = reference.result
    const growth = o.storm.p99 / o.rest.p99
    const name = referenceName(context)
    rows.push(
      {
        scenario: `GET /product/{id} at rest, paced at ${settings.readRate}/s`,
        ours: o.rest,
        referenceName: name,
        reference: r.rest,
        ratio: `p99 ${(o.rest.p99 / r.rest.p99).toFixed(1)}×`,
      },
      {
        scenario: `the same reads during a login storm (${settings.stormClients} clients)`,
        ours: o.storm,
        referenceName: name,
        reference: r.storm,
        ratio: `p99 ${(o.storm.p99 / r.storm.p99).toFixed(1)}×`,
        target: {
          text: `p99 ≤ 3× at rest: ${growth.toFixed(1)}× (reference ${(r.storm.p99 / r.rest.p99).toFixed(1)}×)`,
          met: growth <= 3,
        },
      },
      {
        scenario: 'POST /login during the storm',
        ours: o.logins,
        referenceName: name,
        reference: r.logins,
        ratio: percent(o.logins.requestsPerSecond / r.logins.requestsPerSecond),
      },
    )
    track('login storm', o.storm.peakRssBytes, r.storm.peakRssBytes)
    progress(
      `✓ ${context.db.engine} · login storm: ours reads p99 ${o.rest.p99.toFixed(2)} → ${o.storm.p99.toFixed(2)} ms (${growth.toFixed(1)}×), ` +
        `${Math.round(o.logins.requestsPerSecond)} logins/s, peak RSS ${megabytes(o.storm.peakRssBytes)}; ` +
        `reference ${r.rest.p99.toFixed(2)} → ${r.storm.p99.toFixed(2)} ms, ${Math.round(r.logins.requestsPerSecond)} logins/s, ` +
        `peak RSS ${megabytes(r.storm.peakRssBytes)}`,
    )
  }
  if (selected.includes('durability') && context.db.engine === 'sqlite') {
    fsyncLatency = measureFsync(context.db.dir)
    progress(
      `✓ sqlite · one fsync after a 4 KiB append: p50 ${fsyncLatency.p50.toFixed(2)} ms, p99 ${fsyncLatency.p99.toFixed(2)} ms`,
    )
    for (const side of ['ours', 'reference'] as const) rows.push(await runSynchronousCost(context, side))
  }
  progress(
    `✓ ${context.db.engine} · largest peak RSS: ours ${megabytes(memory.ours)} (${memory.oursScenario}), reference ${megabytes(memory.reference)} (${memory.referenceScenario})`,
  )
  return { engine: context.db.engine, rows, memory, coldStart: coldStartTimes }
}

/** Our server alone under one scenario, with --cpu-prof; prints the profile's summary. */
async function profile(context: BenchContext, key: string) {
  mkdirSync(profileDir, { recursive: true })
  const before = new Set(readdirSync(profileDir))
  context.oursNodeFlags = [...context.oursNodeFlags, '--cpu-prof', `--cpu-prof-dir=${profileDir}`]
  if (key === 'storm') {
    const { result } = await runStorm(context, 'ours', undefined)
    progress(
      `✓ reads p99 at rest ${result.rest.p99.toFixed(2)} ms, during the storm ${result.storm.p99.toFixed(2)} ms`,
    )
  } else {
    const scenario = throughputScenarios(context).find((candidate) => candidate.key === key)!
    progress(`… ${scenario.title}: ${settings.warmupSeconds}s warm-up, ${settings.seconds}s measured`)
    progress(`✓ ${describe(await runThroughputAlone(context, scenario))}`)
  }
  const written = readdirSync(profileDir)
    .filter((file) => file.endsWith('.cpuprofile') && !before.has(file))
    .map((file) => path.join(profileDir, file))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)
  if (!written[0]) throw new Error(`no profile was written to ${profileDir}`)
  progress(summariseProfile(written[0]))
}

/** What the method line says of the seed, once it has been set up. */
let seedDescription: string | undefined

/** The seed beside this engine's databases, when it runs here and a selected scenario has it. */
function setUpSeed(context: BenchContext) {
  const { db } = context
  const wanted = throughputScenarios(context).some(
    ({ key, inSeed }) => inSeed && selected.includes(key as ScenarioKey),
  )
  if (!seedCheckout || !seedPython || db.engine !== 'sqlite' || !wanted) return
  progress(`… FastAPI seed: copying ${path.join(seedCheckout, 'user')}, seeding its database`)
  const seed = prepareFastapiSeed({
    checkout: seedCheckout,
    dir: db.dir,
    python: seedPython,
    emails: db.emails,
    password: db.password,
    products: db.products,
  })
  seedDescription = seed.description
  progress(`✓ ${seed.description}`)
  context.seed = seed
}

const raw = !args.profile && selected.includes('login') ? await measureRawArgon2() : undefined
const reports: EngineReport[] = []
for (const engine of engines) {
  progress(`\n== ${engine}: seeding ${products.toLocaleString('en')} products and ${USERS} users`)
  const db = await prepareDatabases(engine, { products, users: USERS, postgresUrl })
  try {
    const context: BenchContext = {
      db,
      settings,
      oursServer,
      oursNodeFlags,
      oursEnv,
      referenceScript,
      progress,
    }
    if (!args.profile) setUpSeed(context)
    if (args.profile) await profile(context, args.profile)
    else reports.push(await benchEngine(context, raw))
  } finally {
    await db.cleanup()
  }
}

const seconds = (performance.now() - started) / 1000
progress(`\nDone in ${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`)
if (reports.length > 0) {
  const round = settings.seconds / settings.rounds
  const section = benchSection(
    {
      date,
      command: `${postgresUrl && engines.includes('postgres') ? 'BENCH_POSTGRES_URL=… ' : ''}npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      seconds,
      method: [
        `Our server: \`${oursCommand}\` (metrics, helmet and request logs on; the rate limiter on with a limit no run reaches, off for the login storm).`,
        `The reference: \`node bench/reference.ts\` (compiled), a bare Fastify app; on PostgreSQL it uses pg instead of better-sqlite3.`,
        `On SQLite both servers run synchronous ${oursSynchronous(oursEnv).toUpperCase()}${oursSynchronous(oursEnv) === 'full' ? ' (our default)' : ''}; the "synchronous FULL" rows compare FULL against NORMAL on the same server, each on its own copy of the database, in alternating rounds${fsyncLatency ? ` (one fsync after a 4 KiB append on that disk: p50 ${fsyncLatency.p50.toFixed(2)} ms, p99 ${fsyncLatency.p99.toFixed(2)} ms)` : ''}.`,
        `Each scenario starts a fresh process of each server; after ${settings.warmupSeconds} s of warm-up each, they are measured in ${settings.rounds} alternating rounds of ${round.toFixed(1)} s, ${settings.connections} connections (${settings.loginConnections} for logins, as issue 17 measured them; autocannon in the bench process).`,
        `GET /users/{id}: each request reads its caller's own account (only the user or an admin may), cycling over the ${USERS} seeded users with each one's token.`,
        `${products.toLocaleString('en')} products and ${USERS} users, seeded identically for both.`,
        `Raw argon2id: verify() alone, ${settings.seconds} s, in a process of its own, ${settings.loginConnections} in flight as the logins' connections.`,
        ...(seedDescription ? [seedDescription] : []),
        `Login storm: reads paced at ${settings.readRate}/s for ${settings.seconds} s at rest, for ${settings.seconds} s while ${settings.stormClients} clients log in, and ${settings.seconds} s at rest again (the lower p99 at rest counts), one server after the other.`,
      ],
      preliminary: args.preliminary,
      loadBefore,
      loadAfter: currentLoad(),
    },
    reports,
  )
  if (write) progress(`written to ${await writeBenchSection(section)}`)
  else progress(`\n${section}\n\n(not written to docs/performance.md)`)
}
