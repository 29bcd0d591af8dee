import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parseEnv } from 'node:util'

/** A configuration problem a person can fix; its message is one line naming the variable. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

export const JWT_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'ES256',
  'ES384',
  'EdDSA',
] as const
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number]

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
type LogLevel = (typeof LOG_LEVELS)[number]

export interface Config {
  nodeEnv: 'development' | 'production' | 'test'
  host: string
  port: number
  dataDir: string
  databaseUrl: string
  /** Raw secret for HS* algorithms (utf-8 bytes of SECRET_KEY, or the generated development key). */
  secretKey: string
  jwtAlgorithm: JwtAlgorithm
  jwtPrivateKeyFile: string | undefined
  jwtPublicKeyFile: string | undefined
  jwtIssuer: string
  jwtAudience: string
  accessTokenExpireMinutes: number
  refreshTokenExpireDays: number
  /** A session ends this long after its login, however often it is refreshed (ASVS 5.0 V10.4.8; ASVS 4.0 V3.3.2). */
  sessionMaxLifetimeDays: number
  passwordMinLength: number
  redisUrl: string | undefined
  /** Prefix of every Redis key, so that several deployments (or tests) can share one Redis. */
  redisKeyPrefix: string
  smtpUrl: string | undefined
  mailFrom: string
  publicUrl: string
  /**
   * PUBLIC_URL was given. Only then does the OpenAPI document name a server: without it, the docs
   * send "Try it out" and Authorize to the address they were opened at.
   */
  publicUrlConfigured: boolean
  /** The password reset link mailed to users; `{token}` is replaced by the token. */
  passwordResetUrl: string
  /** The email verification link mailed to users; `{token}` is replaced by the token. */
  emailVerificationUrl: string
  corsOrigins: string[]
  trustProxy: boolean | string[] | number
  firstAdminEmail: string | undefined
  firstAdminPassword: string | undefined
  firstAdminName: string
  logLevel: LogLevel
  requireEmailVerification: boolean
  rateLimit: {
    enabled: boolean
    /** Requests per client IP per window, on every route. */
    perIp: number
    windowMs: number
    /** Attempts at a sensitive action (login, registration, refresh, recovery…) per window. */
    attemptsPerIp: number
    attemptsPerAccount: number
    attemptWindowMs: number
  }
  /** PUT/PATCH/DELETE of a product must send If-Match (428 without it). */
  requireIfMatch: boolean
  bodyLimitBytes: number
  /** A request's headers and body must arrive within this time (slow clients cannot hold the server). */
  requestTimeoutMs: number
  /** How long an idle keep-alive connection stays open between requests. */
  keepAliveTimeoutMs: number
  /** Bearer token a Prometheus scraper sends to GET /metrics; unset: no /metrics route. */
  metricsToken: string | undefined
  /** Bounds on every database call, so that a hung database gives a 503 within seconds. */
  database: DatabaseOptions
  /** /readyz answers within this, whatever its checks wait for. */
  readinessTimeoutMs: number
  /** On SIGTERM/SIGINT, /readyz fails for this long (load balancers stop sending) before the server stops listening. */
  shutdownDrainMs: number
  /** After the drain, in-flight requests have this long to finish before the process gives up on them. */
  shutdownTimeoutMs: number
}

export interface DatabaseOptions {
  /** A query (PostgreSQL, MySQL) that has not answered within this fails; its connection is discarded. */
  queryTimeoutMs: number
  /** Waiting for a pooled connection, or opening a new one, fails after this. */
  connectTimeoutMs: number
  /**
   * SQLite's `synchronous` pragma. `full` (the default) syncs the WAL on every commit: no acknowledged
   * write is lost on an OS crash or power loss. `normal` is faster but may lose the last commits then.
   */
  sqliteSynchronous: 'full' | 'normal'
}

type Env = Record<string, string | undefined>

function fail(variable: string, problem: string): never {
  throw new ConfigError(`${variable}: ${problem}`)
}

function read(env: Env, name: string): string | undefined {
  const value = env[name]
  if (value === undefined) return undefined
  const trimmed = value.trim()
  return trimmed === '' ? undefined : trimmed
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  if (!/^-?\d+$/.test(raw)) fail(name, `expected a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) fail(name, `must be between ${min} and ${max}, got ${value}`)
  return value
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase()
  if (raw === undefined) return fallback
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true
  if (['0', 'false', 'no', 'off'].includes(raw)) return false
  return fail(name, `expected true or false, got "${raw}"`)
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  if (!(allowed as readonly string[]).includes(raw))
    fail(name, `must be one of ${allowed.join(', ')}; got "${raw}"`)
  return raw as T
}

function url(env: Env, name: string, schemes: string[]): string | undefined {
  const raw = read(env, name)
  if (raw === undefined) return undefined
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    return fail(name, 'is not a valid URL')
  }
  if (!schemes.includes(parsed.protocol))
    fail(name, `must start with ${schemes.map((s) => `${s}//`).join(' or ')}`)
  return raw
}

/**
 * A link template for emails: an http(s) URL with a `{token}` placeholder, so that an app with its
 * own frontend can point the links at its own pages.
 */
function linkTemplate(env: Env, name: string, fallback: string): string {
  const raw = read(env, name)
  if (raw === undefined) return fallback
  if (!raw.includes('{token}')) fail(name, 'must contain {token}, where the token goes')
  let parsed: URL
  try {
    parsed = new URL(raw.replaceAll('{token}', 'token'))
  } catch {
    return fail(name, 'is not a valid URL')
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    fail(name, 'must start with http:// or https://')
  return raw
}

/** A shared secret sent as a bearer token: long enough not to be guessed, and never repeated in errors. */
function bearerSecret(env: Env, name: string, minLength: number): string | undefined {
  const raw = read(env, name)
  if (raw === undefined) return undefined
  if (!/^[A-Za-z0-9\-._~+/]+=*$/.test(raw))
    fail(name, 'may contain only letters, digits and - . _ ~ + / (it is sent as a bearer token)')
  if (raw.length < minLength)
    fail(
      name,
      `must be at least ${minLength} characters (got ${raw.length}); generate one with: openssl rand -hex 32`,
    )
  return raw
}

function parseTrustProxy(env: Env): Config['trustProxy'] {
  const raw = read(env, 'TRUST_PROXY')
  if (raw === undefined || ['false', '0', 'no', 'off'].includes(raw.toLowerCase())) return false
  if (raw.toLowerCase() === 'true')
    fail(
      'TRUST_PROXY',
      'name the proxies to trust (addresses or CIDR ranges, comma-separated) or a hop count',
    )
  if (/^\d+$/.test(raw)) return Number(raw)
  const entries = raw.split(',').map((part) => part.trim())
  for (const entry of entries) {
    if (
      !/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(entry) &&
      !['loopback', 'linklocal', 'uniquelocal'].includes(entry)
    )
      fail('TRUST_PROXY', `"${entry}" is not an IP address, CIDR range, or loopback/linklocal/uniquelocal`)
  }
  return entries
}

/**
 * Reads `.env` (when present) beneath the real environment: a variable set in the
 * environment always wins over the file.
 */
export function readEnvFile(file = '.env'): Env {
  if (!existsSync(file)) return {}
  try {
    return parseEnv(readFileSync(file, 'utf8'))
  } catch (error) {
    throw new ConfigError(`${file}: cannot be read (${(error as Error).message})`)
  }
}

export interface LoadOptions {
  /** Called once when a development secret key is generated, so the caller can warn. */
  onGeneratedSecret?: (file: string) => void
}

export function loadConfig(env: Env, options: LoadOptions = {}): Config {
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'production', 'test'] as const, 'development')
  const production = nodeEnv === 'production'
  const dataDir = path.resolve(read(env, 'DATA_DIR') ?? 'data')
  const databaseUrl =
    read(env, 'DATABASE_URL') ?? `sqlite:///${path.relative(process.cwd(), dataDir) || '.'}/app.db`
  if (!/^(sqlite:|postgres:\/\/|postgresql:\/\/|mysql:\/\/|mariadb:\/\/)/.test(databaseUrl))
    fail('DATABASE_URL', 'must start with sqlite:, postgres://, postgresql://, mysql:// or mariadb://')

  const jwtAlgorithm = oneOf(env, 'JWT_ALGORITHM', JWT_ALGORITHMS, 'HS256')
  const symmetric = jwtAlgorithm.startsWith('HS')
  const jwtPrivateKeyFile = read(env, 'JWT_PRIVATE_KEY_FILE')
  const jwtPublicKeyFile = read(env, 'JWT_PUBLIC_KEY_FILE')
  if (!symmetric) {
    if (!jwtPrivateKeyFile) fail('JWT_PRIVATE_KEY_FILE', `is required when JWT_ALGORITHM=${jwtAlgorithm}`)
    if (!jwtPublicKeyFile) fail('JWT_PUBLIC_KEY_FILE', `is required when JWT_ALGORITHM=${jwtAlgorithm}`)
    for (const [name, file] of [
      ['JWT_PRIVATE_KEY_FILE', jwtPrivateKeyFile],
      ['JWT_PUBLIC_KEY_FILE', jwtPublicKeyFile],
    ] as const) {
      if (!existsSync(file)) fail(name, `file "${file}" does not exist`)
    }
  }

  let secretKey = env.SECRET_KEY ?? ''
  if (secretKey !== '' && Buffer.byteLength(secretKey) < 32)
    fail(
      'SECRET_KEY',
      `must be at least 32 bytes (got ${Buffer.byteLength(secretKey)}); generate one with: openssl rand -base64 48`,
    )
  if (secretKey === '') {
    if (production)
      fail(
        'SECRET_KEY',
        'is required when NODE_ENV=production (at least 32 bytes; e.g. openssl rand -base64 48)',
      )
    secretKey = developmentSecret(dataDir, options.onGeneratedSecret)
  }

  const firstAdminEmail = read(env, 'FIRST_ADMIN_EMAIL')
  const firstAdminPassword = env.FIRST_ADMIN_PASSWORD || undefined
  if (firstAdminEmail && !firstAdminPassword)
    fail('FIRST_ADMIN_PASSWORD', 'is required when FIRST_ADMIN_EMAIL is set')
  if (firstAdminEmail && !/^[^\s@]+@[^\s@]+$/.test(firstAdminEmail))
    fail('FIRST_ADMIN_EMAIL', `"${firstAdminEmail}" is not an email address`)
  const firstAdminName = read(env, 'FIRST_ADMIN_NAME') ?? 'admin'
  // The rule of every user name (auth/accounts.ts assertNamePolicy), said before anything starts.
  if (firstAdminEmail && firstAdminName.normalize('NFKC').includes('@'))
    fail(
      'FIRST_ADMIN_NAME',
      `"${firstAdminName}" contains "@", which no user name may (it could be taken for an email address); choose a name without it`,
    )

  const port = integer(env, 'PORT', 8000, 0, 65535)
  const host = read(env, 'HOST') ?? '127.0.0.1'
  const configuredPublicUrl = url(env, 'PUBLIC_URL', ['http:', 'https:'])
  const publicUrl = configuredPublicUrl ?? `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`
  // Links in emails open the server's own pages unless an app with its own frontend says otherwise.
  const linkBase = publicUrl.replace(/\/+$/, '')

  const corsOrigins = (read(env, 'CORS_ORIGINS') ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter(Boolean)
  for (const origin of corsOrigins) {
    if (origin === '*') fail('CORS_ORIGINS', 'list the allowed origins; "*" is not accepted')
    if (!/^https?:\/\/[^/]+$/.test(origin))
      fail('CORS_ORIGINS', `"${origin}" is not an origin like https://app.example.com`)
  }

  return {
    nodeEnv,
    host,
    port,
    dataDir,
    databaseUrl,
    secretKey,
    jwtAlgorithm,
    jwtPrivateKeyFile,
    jwtPublicKeyFile,
    jwtIssuer: read(env, 'JWT_ISSUER') ?? 'fastauth-api',
    jwtAudience: read(env, 'JWT_AUDIENCE') ?? 'fastauth-api',
    accessTokenExpireMinutes: integer(env, 'ACCESS_TOKEN_EXPIRE_MINUTES', 15, 1, 24 * 60),
    refreshTokenExpireDays: integer(env, 'REFRESH_TOKEN_EXPIRE_DAYS', 14, 1, 365),
    sessionMaxLifetimeDays: integer(env, 'SESSION_MAX_LIFETIME_DAYS', 30, 1, 3650),
    passwordMinLength: integer(env, 'PASSWORD_MIN_LENGTH', 8, 8, 128),
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    redisKeyPrefix: read(env, 'REDIS_KEY_PREFIX') ?? 'fastauth:',
    smtpUrl: url(env, 'SMTP_URL', ['smtp:', 'smtps:']),
    mailFrom: read(env, 'MAIL_FROM') ?? 'FastAuth API <no-reply@localhost>',
    publicUrl: publicUrl.replace(/\/+$/, ''),
    publicUrlConfigured: configuredPublicUrl !== undefined,
    passwordResetUrl: linkTemplate(env, 'PASSWORD_RESET_URL', `${linkBase}/reset-password?token={token}`),
    emailVerificationUrl: linkTemplate(
      env,
      'EMAIL_VERIFICATION_URL',
      `${linkBase}/verify-email?token={token}`,
    ),
    corsOrigins,
    trustProxy: parseTrustProxy(env),
    firstAdminEmail,
    firstAdminPassword,
    firstAdminName,
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, nodeEnv === 'test' ? 'silent' : 'info'),
    requireEmailVerification: boolean(env, 'REQUIRE_EMAIL_VERIFICATION', false),
    rateLimit: {
      enabled: boolean(env, 'RATE_LIMIT_ENABLED', true),
      perIp: integer(env, 'RATE_LIMIT_PER_MINUTE', 600, 1, 1_000_000),
      windowMs: 60_000,
      attemptsPerIp: integer(env, 'RATE_LIMIT_ATTEMPTS_PER_IP', 30, 1, 100_000),
      attemptsPerAccount: integer(env, 'RATE_LIMIT_ATTEMPTS_PER_ACCOUNT', 10, 1, 100_000),
      attemptWindowMs: integer(env, 'RATE_LIMIT_ATTEMPT_WINDOW_SECONDS', 900, 1, 86_400) * 1000,
    },
    requireIfMatch: boolean(env, 'REQUIRE_IF_MATCH', false),
    bodyLimitBytes: integer(env, 'BODY_LIMIT_BYTES', 64 * 1024, 1024, 10 * 1024 * 1024),
    requestTimeoutMs: integer(env, 'REQUEST_TIMEOUT_MS', 30_000, 100, 600_000),
    keepAliveTimeoutMs: integer(env, 'KEEP_ALIVE_TIMEOUT_MS', 72_000, 100, 600_000),
    metricsToken: bearerSecret(env, 'METRICS_TOKEN', 16),
    database: {
      queryTimeoutMs: integer(env, 'DATABASE_QUERY_TIMEOUT_MS', 5_000, 100, 600_000),
      connectTimeoutMs: integer(env, 'DATABASE_CONNECT_TIMEOUT_MS', 5_000, 100, 600_000),
      sqliteSynchronous: oneOf(env, 'SQLITE_SYNCHRONOUS', ['full', 'normal'] as const, 'full'),
    },
    readinessTimeoutMs: integer(env, 'READINESS_TIMEOUT_MS', 2_000, 100, 60_000),
    // Load balancers need a few probe periods to notice; a person pressing Ctrl-C does not wait.
    shutdownDrainMs: integer(env, 'SHUTDOWN_DRAIN_MS', production ? 5_000 : 0, 0, 300_000),
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_MS', 10_000, 100, 600_000),
  }
}

/**
 * Development convenience: a random key generated once and kept in the data folder, so tokens
 * survive restarts without anyone choosing a secret. Never used in production.
 */
function developmentSecret(dataDir: string, onGenerated?: (file: string) => void): string {
  const file = path.join(dataDir, 'secret_key')
  if (existsSync(file)) {
    const stored = readFileSync(file, 'utf8').trim()
    if (Buffer.byteLength(stored) >= 32) return stored
  }
  try {
    mkdirSync(dataDir, { recursive: true })
    const generated = randomBytes(48).toString('base64url')
    writeFileSync(file, `${generated}\n`, { mode: 0o600 })
    onGenerated?.(file)
    return generated
  } catch (error) {
    throw new ConfigError(
      `SECRET_KEY: not set, and a development key cannot be written to ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'}); set SECRET_KEY or DATA_DIR`,
    )
  }
}
