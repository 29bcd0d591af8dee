/**
 * The scenarios of `npm run bench` (issues 7 and 17): our server and the reference (and, on SQLite
 * when it is set up, the FastAPI seed), each in a fresh process of its own per scenario, loaded in
 * alternating rounds; their figures and peak memory.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeJwt } from 'jose'
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
  /** Connections of the login scenario, and raw argon2id's verifications in flight against it. */
  loginConnections: number
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
  /** The FastAPI seed, when it runs on this engine (bench/fastapi-seed.ts). */
  seed?: SeedContender
  progress(line: string): void
}

/** The servers startSide starts: ours and the bare reference, which answer the same API. */
export type Side = 'ours' | 'reference'
/** Who a contender is, which names its results and tags the rows it creates. */
export type ContenderName = Side | 'seed'

/** The paths that differ between the APIs compared (the products' are the same in all). */
export interface Routes {
  user(id: number): string
  /** The OAuth2 password form's endpoint. */
  login: string
}

/** Ours; the reference answers the same paths. */
export const OUR_ROUTES: Routes = { user: (id) => `/users/${id}`, login: '/login' }

/** The bearer tokens a contender is sent. */
export interface Credentials {
  /** The first seeded user's: for the product scenarios. */
  token: string
  /** For GET /users/{id}: the n-th request reads account `userReads[n % length].id` with its token. */
  userReads: { id: number; token: string }[]
}

/** One server of a compared set, as the scenarios address it. */
export interface Contender {
  name: ContenderName
  server: ServerProcess
  routes: Routes
  credentials: Credentials
}

/** A third contender of the throughput scenarios that have `inSeed`: the FastAPI seed. */
export interface SeedContender {
  routes: Routes
  /** A fresh process of it, logging to `<label>.log` in the bench's folder. */
  start(label: string): Promise<ServerProcess>
  /** Tokens from its own login, for the accounts it holds. */
  credentials(origin: string): Promise<Credentials>
}

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
  /** The FastAPI seed under the same load, when it ran; ratio: ours ÷ seed of req/s (a multiple). */
  seed?: { result: SideResult; ratio: string }
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

/** An access token from a server's real login: the OAuth2 password form, which every contender takes. */
export async function logIn(
  origin: string,
  routes: Routes,
  email: string,
  password: string,
): Promise<string> {
  const response = await fetch(`${origin}${routes.login}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: email, password }).toString(),
  })
  if (response.status !== 200) throw new Error(`login answered ${response.status}: ${await response.text()}`)
  return ((await response.json()) as { access_token: string }).access_token
}

/**
 * Tokens from our server's /login, which the reference verifies with the same key. GET /users/{id}
 * answers only the user themself or an admin (services/policies.ts, canManageUser), and the seeded
 * users are all plain users: there, each request reads its caller's own account, cycling over every
 * seeded user (ids 1..50) with that user's token — the common case, and no admin to create, whose
 * role would also change who the other scenarios act as. The product scenarios need one token.
 */
async function ourCredentials(origin: string, db: BenchDatabases, everyUser = false): Promise<Credentials> {
  const emails = everyUser ? db.emails : db.emails.slice(0, 1)
  const tokens = await Promise.all(emails.map((email) => logIn(origin, OUR_ROUTES, email, db.password)))
  return {
    token: tokens[0]!,
    userReads: tokens.map((token) => ({ id: Number(decodeJwt(token).sub), token })),
  }
}

// A server may answer nothing within a short round (the seed's logins take seconds each at 8 in flight).
const ms = (value: number) => (Number.isNaN(value) ? '–' : value < 10 ? value.toFixed(2) : value.toFixed(1))
export const megabytes = (bytes: number) => `${Math.round(bytes / 1e6)} MB`
export const percent = (ratio: number) => `${(ratio * 100).toFixed(0)} %`
/** ours ÷ seed: a multiple, as our server is many times the seed's rate. */
export const times = (ratio: number) =>
  Number.isFinite(ratio) ? `${ratio < 10 ? ratio.toFixed(1) : ratio.toFixed(0)}×` : '– (no answer)'

export const describe = (result: LoadResult & { peakRssBytes?: number }) =>
  `${Math.round(result.requestsPerSecond)} req/s, p50 ${ms(result.p50)} ms, p99 ${ms(result.p99)} ms` +
  (result.cpuMicrosPerRequest && Number.isFinite(result.cpuMicrosPerRequest)
    ? `, ${Math.round(result.cpuMicrosPerRequest)} µs CPU/req`
    : '') +
  (result.peakRssBytes ? `, peak RSS ${megabytes(result.peakRssBytes)}` : '') +
  (result.failures ? `, ${result.failures} FAILED` : '')

export function referenceName(context: BenchContext): string {
  return `bare Fastify + jose + ${context.db.engine === 'sqlite' ? 'better-sqlite3' : 'pg'}`
}

/** A throughput scenario: a closed load of `connections` clients as fast as answers come. */
export interface ThroughputScenario {
  key: string
  title: string
  /** Clients in flight: the run's --connections, or --login-connections for logins. */
  connections: number
  /** Needs a token of every seeded user, not only the first one's (GET /users/{id}). */
  tokensOfEveryUser?: boolean
  /** The FastAPI seed has the route too (it has no list of products), so it runs there as well. */
  inSeed?: boolean
  load(contender: Contender): Omit<LoadOptions, 'seconds' | 'connections'>
  target?: (ratio: number) => { text: string; met: boolean }
}

/** Issue 17's target for ours ÷ reference of req/s, which it sets per engine. */
function atLeast(context: BenchContext, minimum: Record<BenchDatabases['engine'], number>) {
  const share = minimum[context.db.engine]
  return (ratio: number) => ({ text: `≥ ${percent(share)} of the reference`, met: ratio >= share })
}

export function throughputScenarios(context: BenchContext): ThroughputScenario[] {
  const { products, emails, password } = context.db
  const { connections, loginConnections } = context.settings
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
  return [
    {
      key: 'get-product',
      title: 'GET /product/{id} with a bearer token',
      connections,
      inSeed: true,
      load: ({ server, credentials }) => ({
        url: server.origin,
        headers: bearer(credentials.token),
        request: (n) => ({ path: `/product/${(n % products) + 1}` }),
      }),
      target: atLeast(context, { sqlite: 0.8, postgres: 0.9 }),
    },
    {
      key: 'get-user',
      title: 'GET /users/{id} with a bearer token',
      connections,
      tokensOfEveryUser: true,
      inSeed: true,
      load: ({ server, routes, credentials: { userReads } }) => ({
        url: server.origin,
        request: (n) => {
          const read = userReads[n % userReads.length]!
          return { path: routes.user(read.id), headers: bearer(read.token) }
        },
      }),
      target: atLeast(context, { sqlite: 0.8, postgres: 0.9 }),
    },
    {
      key: 'list-products',
      title: 'GET /product/?limit=20',
      connections,
      load: ({ server, credentials }) => ({
        url: `${server.origin}/product/?limit=20`,
        headers: bearer(credentials.token),
      }),
    },
    {
      key: 'create-product',
      title: 'POST /product/',
      connections,
      inSeed: true,
      load: ({ server, credentials, name: side }) => {
        // Unique SKUs across runs and sides: each run inserts rows of its own.
        const tag = `${side}-${randomBytes(4).toString('hex')}`
        return {
          url: `${server.origin}/product/`,
          method: 'POST',
          headers: { ...bearer(credentials.token), 'content-type': 'application/json' },
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
      target: atLeast(context, { sqlite: 0.6, postgres: 0.7 }),
    },
    {
      key: 'login',
      title: 'POST /login (valid password)',
      // As issue 17 measured logins; raw argon2id is measured with as many in flight.
      connections: loginConnections,
      inSeed: true,
      load: ({ server, routes }) => ({
        url: `${server.origin}${routes.login}`,
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
  /** A contender under a scenario's load: a fresh load (and creation tag) for each run. */
  static of(contender: Contender, scenario: ThroughputScenario) {
    return new LoadedServer(contender.server, () => ({
      ...scenario.load(contender),
      connections: scenario.connections,
    }))
  }
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

/** One result per contender, in their order (a tuple for a tuple). */
type ResultsOf<T extends readonly Contender[]> = { -readonly [K in keyof T]: SideResult }

/**
 * Servers under the same scenario: each is warmed up, then they are measured in alternating rounds
 * (first, second, …, first, second, …), so that a change in the machine's load weighs on all alike.
 */
async function measureAlternating<const T extends readonly Contender[]>(
  context: BenchContext,
  scenario: ThroughputScenario,
  description: string,
  contenders: T,
): Promise<ResultsOf<T>> {
  const { settings, db } = context
  const loaded = contenders.map((contender) => LoadedServer.of(contender, scenario))
  const round = settings.seconds / settings.rounds
  context.progress(
    `… ${db.engine} · ${description}: ${settings.warmupSeconds}s warm-up each, then ${settings.rounds} × ${round.toFixed(1)}s each, alternating; ${scenario.connections} connections`,
  )
  for (const server of loaded) await server.warmUp(settings.warmupSeconds)
  for (let i = 0; i < settings.rounds; i++) for (const server of loaded) await server.measure(round)
  return loaded.map((server) => server.result()) as ResultsOf<T>
}

/**
 * One throughput scenario on our server and the reference, and on the FastAPI seed where it runs
 * (SQLite) and has the route: each in a fresh process of its own.
 */
export async function runThroughput(
  context: BenchContext,
  scenario: ThroughputScenario,
): Promise<ScenarioRow> {
  const { db } = context
  const seed = scenario.inSeed ? context.seed : undefined
  const servers: ServerProcess[] = []
  const started = (server: ServerProcess) => {
    servers.push(server)
    return server
  }
  try {
    const ours = started(await startSide(context, 'ours', scenario.key))
    const reference = started(await startSide(context, 'reference', scenario.key))
    const credentials = await ourCredentials(ours.origin, db, scenario.tokensOfEveryUser)
    const pair: [Contender, Contender] = [
      { name: 'ours', server: ours, routes: OUR_ROUTES, credentials },
      { name: 'reference', server: reference, routes: OUR_ROUTES, credentials },
    ]
    let contenders: [Contender, Contender] | [Contender, Contender, Contender] = pair
    if (seed) {
      const server = started(await seed.start(`seed-${scenario.key}`))
      const seedCredentials = await seed.credentials(server.origin)
      contenders = [...pair, { name: 'seed', server, routes: seed.routes, credentials: seedCredentials }]
    }
    const [oursResult, referenceResult, seedResult] = await measureAlternating(
      context,
      scenario,
      `${scenario.title} (${contenders.map(({ name }) => name).join(', ')})`,
      contenders,
    )
    const ratio = oursResult.requestsPerSecond / referenceResult.requestsPerSecond
    const seedColumn = seedResult && {
      result: seedResult,
      ratio: times(oursResult.requestsPerSecond / seedResult.requestsPerSecond),
    }
    context.progress(
      `✓ ${db.engine} · ${scenario.title}: ours ${describe(oursResult)}; reference ${describe(referenceResult)}; ours/ref ${percent(ratio)}` +
        (seedColumn ? `; seed ${describe(seedColumn.result)}; ours/seed ${seedColumn.ratio}` : ''),
    )
    return {
      scenario: scenario.title,
      ours: oursResult,
      referenceName: referenceName(context),
      reference: referenceResult,
      ratio: percent(ratio),
      target: scenario.target?.(ratio),
      ...(seedColumn ? { seed: seedColumn } : {}),
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
    const contender = async (server: ServerProcess): Promise<Contender> => ({
      name: side,
      server,
      routes: OUR_ROUTES,
      credentials: await ourCredentials(server.origin, db),
    })
    const [fullResult, normalResult] = await measureAlternating(
      context,
      scenario,
      `${scenario.title} on ${serverName}, synchronous FULL against NORMAL`,
      [await contender(full), await contender(normal)],
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
    const credentials = await ourCredentials(server.origin, db, scenario.tokensOfEveryUser)
    const loaded = LoadedServer.of({ name: 'ours', server, routes: OUR_ROUTES, credentials }, scenario)
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
    const bearerToken = token ?? (await logIn(server.origin, OUR_ROUTES, db.emails[0]!, db.password))
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
