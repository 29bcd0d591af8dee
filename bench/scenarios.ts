/**
 * The scenarios of `npm run bench` (issue 7): our server and the reference, each in a fresh process
 * of its own per scenario, loaded back to back; their figures and peak memory.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { BenchDatabases } from './databases.js'
import { combine, runLoad, runPaced, type LoadOptions, type LoadResult, type LoadSample } from './load.js'
import { startServer, type ServerProcess } from './processes.js'

export const SECRET_KEY = 'bench-secret-key-that-is-long-enough-0123456789'
const JWT_ISSUER = 'fastauth-api'
const JWT_AUDIENCE = 'fastauth-api'

export interface Settings {
  /** Measured seconds per server and scenario, in `rounds` alternating rounds. */
  seconds: number
  rounds: number
  warmupSeconds: number
  connections: number
  /** Paced reads per second, at rest and during the login storm. */
  readRate: number
  stormClients: number
}

export interface BenchContext {
  db: BenchDatabases
  settings: Settings
  /** Our server's entry (dist/server.js) and the node flags it runs with (those of `npm start`). */
  oursServer: string
  oursNodeFlags: string[]
  /** Environment variables for our server beyond the benchmark's own (experiments). */
  oursEnv: Record<string, string>
  /** The compiled reference server. */
  referenceScript: string
  progress(line: string): void
}

export type Side = 'ours' | 'reference'

export interface SideResult extends LoadResult {
  /** The server process's peak resident memory (VmHWM) at the end of the scenario, in bytes. */
  peakRssBytes: number
}

export interface ScenarioRow {
  scenario: string
  ours: SideResult
  /** What the reference column is: the bare server, or raw argon2id. */
  referenceName: string
  reference: SideResult
  /** ours ÷ reference: of req/s (as a percentage), or of p99 for the latency rows. */
  ratio: string
  target?: { text: string; met: boolean }
}

/**
 * Our server's environment: production, its normal log level (info), metrics and helmet on. The
 * rate limiter stays on, so that its cost is counted, with limits no run reaches.
 */
function oursEnv(context: BenchContext, extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    DATABASE_URL: context.db.oursUrl,
    SECRET_KEY,
    JWT_ISSUER,
    JWT_AUDIENCE,
    ACCESS_TOKEN_EXPIRE_MINUTES: '60',
    METRICS_TOKEN: randomBytes(16).toString('hex'),
    RATE_LIMIT_PER_MINUTE: '1000000',
    RATE_LIMIT_ATTEMPTS_PER_IP: '100000',
    RATE_LIMIT_ATTEMPTS_PER_ACCOUNT: '100000',
    ...context.oursEnv,
    ...extra,
  }
}

export type Synchronous = 'full' | 'normal'

/** SQLite's synchronous setting of our server in this run: its default (full) unless --env sets it. */
export function oursSynchronous(oursEnv: Record<string, string>): Synchronous {
  return oursEnv.SQLITE_SYNCHRONOUS === 'normal' ? 'normal' : 'full'
}

export interface SideOptions {
  /** Extra environment for our server (the reference takes none). */
  oursEnv?: Record<string, string>
  /** SQLite's synchronous setting, for either server; by default the one our server runs with. */
  synchronous?: Synchronous
  /** Another SQLite file than the side's own (BenchDatabases.copySqlite). */
  sqliteFile?: string
}

export function startSide(
  context: BenchContext,
  side: Side,
  label: string,
  options: SideOptions = {},
): Promise<ServerProcess> {
  const logFile = path.join(context.db.dir, `${side}-${label}.log`)
  // The reference syncs as our server does, so that the ratio compares the same durability.
  const synchronous = options.synchronous ?? oursSynchronous(context.oursEnv)
  if (side === 'ours')
    return startServer({
      args: [...context.oursNodeFlags, context.oursServer],
      env: oursEnv(context, {
        ...options.oursEnv,
        ...(options.sqliteFile ? { DATABASE_URL: `sqlite:///${options.sqliteFile}` } : {}),
        ...(context.db.engine === 'sqlite' ? { SQLITE_SYNCHRONOUS: synchronous } : {}),
      }),
      logFile,
      cwd: context.db.dir,
    })
  return startServer({
    args: [context.referenceScript],
    env: {
      REFERENCE_ENGINE: context.db.engine,
      REFERENCE_DATABASE: options.sqliteFile ?? context.db.reference,
      REFERENCE_SQLITE_SYNCHRONOUS: synchronous,
      SECRET_KEY,
      JWT_ISSUER,
      JWT_AUDIENCE,
    },
    logFile,
    cwd: context.db.dir,
  })
}

/** An access token from our server's real /login (the reference verifies it with the same key). */
async function logIn(origin: string, email: string, password: string): Promise<string> {
  const response = await fetch(`${origin}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: email, password }),
  })
  if (response.status !== 200) throw new Error(`login answered ${response.status}: ${await response.text()}`)
  return ((await response.json()) as { access_token: string }).access_token
}

const ms = (value: number) => (value < 10 ? value.toFixed(2) : value.toFixed(1))
export const megabytes = (bytes: number) => `${Math.round(bytes / 1e6)} MB`
export const percent = (ratio: number) => `${(ratio * 100).toFixed(0)} %`

export const describe = (result: LoadResult & { peakRssBytes?: number }) =>
  `${Math.round(result.requestsPerSecond)} req/s, p50 ${ms(result.p50)} ms, p99 ${ms(result.p99)} ms` +
  (result.cpuMicrosPerRequest ? `, ${Math.round(result.cpuMicrosPerRequest)} µs CPU/req` : '') +
  (result.peakRssBytes ? `, peak RSS ${megabytes(result.peakRssBytes)}` : '') +
  (result.failures ? `, ${result.failures} FAILED` : '')

export function referenceName(context: BenchContext): string {
  return `bare Fastify + jose + ${context.db.engine === 'sqlite' ? 'better-sqlite3' : 'pg'}`
}

/** A throughput scenario: a closed load of `connections` clients as fast as answers come. */
export interface ThroughputScenario {
  key: string
  title: string
  load(origin: string, token: string, side: Side): Omit<LoadOptions, 'seconds' | 'connections'>
  target?: (ratio: number) => { text: string; met: boolean }
}

export function throughputScenarios(context: BenchContext): ThroughputScenario[] {
  const { products, emails, password } = context.db
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  return [
    {
      key: 'get-product',
      title: 'GET /product/{id} with a bearer token',
      load: (origin, token) => ({
        url: origin,
        headers: bearer(token),
        request: (n) => ({ path: `/product/${(n % products) + 1}` }),
      }),
      target: (ratio) => ({ text: '≥ 70 % of the reference', met: ratio >= 0.7 }),
    },
    {
      key: 'list-products',
      title: 'GET /product/?limit=20',
      load: (origin, token) => ({ url: `${origin}/product/?limit=20`, headers: bearer(token) }),
    },
    {
      key: 'create-product',
      title: 'POST /product/',
      load: (origin, token, side) => {
        // Unique SKUs across runs and sides: each run inserts rows of its own.
        const tag = `${side}-${randomBytes(4).toString('hex')}`
        return {
          url: `${origin}/product/`,
          method: 'POST',
          headers: { ...bearer(token), 'content-type': 'application/json' },
          request: (n) => ({
            body: JSON.stringify({
              product_id: `BENCH-${tag}-${n}`,
              name: 'Bench product',
              description: 'Made by the benchmark.',
              price: n % 100_000,
            }),
          }),
        }
      },
    },
    {
      key: 'login',
      title: 'POST /login (valid password)',
      load: (origin) => ({
        url: `${origin}/login`,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        request: (n) => ({
          body: new URLSearchParams({ username: emails[n % emails.length]!, password }).toString(),
        }),
      }),
    },
  ]
}

/** One server under a scenario's load: a warm-up, then measured rounds (its CPU time counted). */
class LoadedServer {
  private readonly samples: LoadSample[] = []
  private cpuMs = 0
  constructor(
    readonly server: ServerProcess,
    private readonly options: () => Omit<LoadOptions, 'seconds'>,
  ) {}
  async warmUp(seconds: number) {
    await runLoad({ ...this.options(), seconds })
  }
  async measure(seconds: number) {
    const before = this.server.cpuMs()
    this.samples.push(await runLoad({ ...this.options(), seconds }))
    this.cpuMs += this.server.cpuMs() - before
  }
  result(): SideResult {
    return { ...combine(this.samples, this.cpuMs), peakRssBytes: this.server.peakRssBytes() }
  }
}

/** One server of a compared pair: the token it is sent, the side its requests are tagged with. */
interface Contender {
  server: ServerProcess
  token: string
  side: Side
}

/**
 * Two servers under the same scenario: both are warmed up, then measured in alternating rounds
 * (first, second, first, …), so that a change in the machine's load weighs on both alike.
 */
async function measureAlternating(
  context: BenchContext,
  scenario: ThroughputScenario,
  description: string,
  first: Contender,
  second: Contender,
): Promise<[SideResult, SideResult]> {
  const { settings, db } = context
  const loaded = ({ server, token, side }: Contender) =>
    new LoadedServer(server, () => ({
      ...scenario.load(server.origin, token, side),
      connections: settings.connections,
    }))
  const sides = [loaded(first), loaded(second)] as const
  const round = settings.seconds / settings.rounds
  context.progress(
    `… ${db.engine} · ${description}: ${settings.warmupSeconds}s warm-up each, then ${settings.rounds} × ${round.toFixed(1)}s each, alternating; ${settings.connections} connections`,
  )
  for (const side of sides) await side.warmUp(settings.warmupSeconds)
  for (let i = 0; i < settings.rounds; i++) for (const side of sides) await side.measure(round)
  return [sides[0].result(), sides[1].result()]
}

/** One throughput scenario on both servers, each in a fresh process of its own. */
export async function runThroughput(
  context: BenchContext,
  scenario: ThroughputScenario,
): Promise<ScenarioRow> {
  const { db } = context
  const servers: ServerProcess[] = []
  try {
    const ours = await startSide(context, 'ours', scenario.key)
    servers.push(ours)
    const reference = await startSide(context, 'reference', scenario.key)
    servers.push(reference)
    const token = await logIn(ours.origin, db.emails[0]!, db.password)
    const [oursResult, referenceResult] = await measureAlternating(
      context,
      scenario,
      scenario.title,
      { server: ours, token, side: 'ours' },
      { server: reference, token, side: 'reference' },
    )
    const ratio = oursResult.requestsPerSecond / referenceResult.requestsPerSecond
    context.progress(
      `✓ ${db.engine} · ${scenario.title}: ours ${describe(oursResult)}; reference ${describe(referenceResult)}; ours/ref ${percent(ratio)}`,
    )
    return {
      scenario: scenario.title,
      ours: oursResult,
      referenceName: referenceName(context),
      reference: referenceResult,
      ratio: percent(ratio),
      target: scenario.target?.(ratio),
    }
  } finally {
    for (const server of servers) await server.stop()
  }
}

/**
 * What durability costs on SQLite: `POST /product/` on one side's server with synchronous FULL
 * (a WAL sync per commit: no acknowledged write lost on an OS crash) against the same server
 * with NORMAL (syncs at checkpoints only), each on its own copy of the database, in alternating
 * rounds. Run for our server and for the bare reference, which shows SQLite's own cost.
 */
export async function runSynchronousCost(context: BenchContext, side: Side): Promise<ScenarioRow> {
  const { db } = context
  const scenario = throughputScenarios(context).find((candidate) => candidate.key === 'create-product')!
  const serverName = side === 'ours' ? 'our server' : 'the bare reference'
  const servers: ServerProcess[] = []
  try {
    const full = await startSide(context, side, 'synchronous-full', { synchronous: 'full' })
    servers.push(full)
    const normal = await startSide(context, side, 'synchronous-normal', {
      synchronous: 'normal',
      sqliteFile: db.copySqlite(side, `${side}-synchronous-normal`),
    })
    servers.push(normal)
    const [fullResult, normalResult] = await measureAlternating(
      context,
      scenario,
      `${scenario.title} on ${serverName}, synchronous FULL against NORMAL`,
      { server: full, token: await logIn(full.origin, db.emails[0]!, db.password), side },
      { server: normal, token: await logIn(normal.origin, db.emails[0]!, db.password), side },
    )
    const ratio = fullResult.requestsPerSecond / normalResult.requestsPerSecond
    context.progress(
      `✓ ${db.engine} · ${scenario.title} on ${serverName}: FULL ${describe(fullResult)}; NORMAL ${describe(normalResult)}; FULL/NORMAL ${percent(ratio)}`,
    )
    return {
      scenario: `${scenario.title} on ${serverName}, synchronous FULL`,
      ours: fullResult,
      referenceName: `${serverName}, synchronous NORMAL`,
      reference: normalResult,
      ratio: percent(ratio),
    }
  } finally {
    for (const server of servers) await server.stop()
  }
}

/** Our server alone under a scenario (for --profile). */
export async function runThroughputAlone(context: BenchContext, scenario: ThroughputScenario) {
  const { settings, db } = context
  const server = await startSide(context, 'ours', scenario.key)
  try {
    const token = await logIn(server.origin, db.emails[0]!, db.password)
    const loaded = new LoadedServer(server, () => ({
      ...scenario.load(server.origin, token, 'ours'),
      connections: settings.connections,
    }))
    await loaded.warmUp(settings.warmupSeconds)
    await loaded.measure(settings.seconds)
    return loaded.result()
  } finally {
    await server.stop()
  }
}

/**
 * The raw argon2id rate of the machine (bench/argon2-raw.ts, a process of its own, no HTTP):
 * verify() of a hash with our parameters, `concurrency` calls always in flight.
 */
export function runRawArgon2(
  script: string,
  options: { passwordHash: string; password: string; concurrency: number; settings: Settings },
): SideResult {
  const output = execFileSync(process.execPath, [script], {
    env: {
      PATH: process.env.PATH ?? '',
      ARGON2_HASH: options.passwordHash,
      ARGON2_PASSWORD: options.password,
      CONCURRENCY: String(options.concurrency),
      SECONDS: String(options.settings.seconds),
      WARMUP_SECONDS: String(options.settings.warmupSeconds),
    },
    encoding: 'utf8',
  })
  const raw = JSON.parse(output) as { perSecond: number; p50: number; p99: number; peakRssBytes: number }
  return {
    requestsPerSecond: raw.perSecond,
    p50: raw.p50,
    p99: raw.p99,
    failures: 0,
    total: 0,
    peakRssBytes: raw.peakRssBytes,
  }
}

export interface StormResult {
  rest: SideResult
  storm: SideResult
  logins: SideResult
}

/**
 * Reads during a login storm, on one server: GET /product/{id} paced at `readRate` at rest, then
 * the same reads while `stormClients` clients log in as fast as they can (valid passwords, rate
 * limit disabled for the run), then at rest again.
 */
export async function runStorm(context: BenchContext, side: Side, token: string | undefined) {
  const { settings, db } = context
  const server = await startSide(context, side, 'storm', { oursEnv: { RATE_LIMIT_ENABLED: 'false' } })
  try {
    const bearerToken = token ?? (await logIn(server.origin, db.emails[0]!, db.password))
    const reads = (seconds: number) =>
      runPaced({
        origin: server.origin,
        path: (n) => `/product/${(n % db.products) + 1}`,
        headers: { authorization: `Bearer ${bearerToken}` },
        rate: settings.readRate,
        seconds,
      })
    context.progress(
      `… ${db.engine} · login storm · ${side}: reads at ${settings.readRate}/s, ${settings.seconds}s at rest, ${settings.seconds}s with ${settings.stormClients} clients logging in, ${settings.seconds}s at rest`,
    )
    await reads(settings.warmupSeconds)
    const restBefore = combine([await reads(settings.seconds)])
    const logins = runLoad({
      url: `${server.origin}/login`,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      request: (n) => ({
        body: new URLSearchParams({
          username: db.emails[n % db.emails.length]!,
          password: db.password,
        }).toString(),
      }),
      connections: settings.stormClients,
      seconds: settings.warmupSeconds + settings.seconds,
    })
    // The reads start once the storm is under way.
    await sleep(settings.warmupSeconds * 1000)
    const storm = combine([await reads(settings.seconds)])
    const loginResult = combine([await logins])
    // At rest again, once the storm is over: of the two, the lower p99 is the one compared with,
    // so that a disturbance of the machine during one of them cannot flatter the ratio.
    const restAfter = combine([await reads(settings.seconds)])
    const rest = restAfter.p99 < restBefore.p99 ? restAfter : restBefore
    const peakRssBytes = server.peakRssBytes()
    const result: StormResult = {
      rest: { ...rest, peakRssBytes },
      storm: { ...storm, peakRssBytes },
      logins: { ...loginResult, peakRssBytes },
    }
    return { result, token: bearerToken }
  } finally {
    await server.stop()
  }
}
