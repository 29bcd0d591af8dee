/**
 * The typed configuration the rest of the code reads. Each field is filled by a variable declared
 * in ./variables/ (a field no declaration fills does not typecheck: see ./variables/index.ts).
 */

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

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** An OpenID Connect provider users may sign in with (OIDC_PROVIDERS). */
export interface IdentityProviderConfig {
  /** The provider's id in our paths (/login/{id}) and records. */
  id: string
  /** What the sign-in button says: "Sign in with {name}". */
  name: string
  /** The issuer URL; its /.well-known/openid-configuration describes the provider. */
  issuer: string
  clientId: string
  /** Unset for a public client (PKCE alone authenticates the code exchange). */
  clientSecret: string | undefined
  /** Space-separated; always with openid. */
  scopes: string
}

export interface Config {
  nodeEnv: 'development' | 'production' | 'test'
  host: string
  port: number
  dataDir: string
  databaseUrl: string
  /** Raw secret for HS* algorithms (utf-8 bytes of SECRET_KEY, or the generated development key). */
  secretKey: string
  /**
   * DATA_ENCRYPTION_KEY: encrypts the secrets stored in the database (src/auth/data-encryption.ts).
   * Unset: a key derived from SECRET_KEY.
   */
  dataEncryptionKey: Uint8Array | undefined
  /** DATA_ENCRYPTION_PREVIOUS_KEYS: keys rotated out, which still decrypt and never encrypt. */
  dataEncryptionPreviousKeys: Uint8Array[]
  jwtAlgorithm: JwtAlgorithm
  jwtPrivateKeyFile: string | undefined
  jwtPublicKeyFile: string | undefined
  jwtKeyRotationDays: number
  jwtIssuer: string
  jwtAudience: string
  accessTokenExpireMinutes: number
  refreshTokenExpireDays: number
  /** A session ends this long after its login, however often it is refreshed (ASVS 5.0 V10.4.8; ASVS 4.0 V3.3.2). */
  sessionMaxLifetimeDays: number
  passwordMinLength: number
  /** argon2id computations at once, for the whole process; undefined: the default (src/auth/passwords.ts). */
  passwordHashingConcurrency: number | undefined
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
  /** Admins without a second factor may only enrol one. */
  requireMfaForAdmins: boolean
  /** The WebAuthn relying party ID: the domain passkeys are registered for. */
  webauthnRpId: string
  /** The origins whose WebAuthn answers are accepted. */
  webauthnOrigins: string[]
  /** OIDC_PROVIDERS: the providers users may sign in with (none by default). */
  identityProviders: IdentityProviderConfig[]
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

/**
 * Every leaf of Config as a dotted path ('port', 'rateLimit.perIp'): what a variable can fill.
 * Arrays and unions (corsOrigins, trustProxy) are values of their own, not objects to descend into.
 */
type Leaves<T> = {
  [K in keyof T & string]: T[K] extends readonly unknown[]
    ? K
    : T[K] extends object
      ? `${K}.${Leaves<T[K]>}`
      : K
}[keyof T & string]

export type ConfigField = Leaves<Config>

/** The type of the Config field at a dotted path. */
export type FieldValue<P extends string, T = Config> = P extends `${infer Head}.${infer Rest}`
  ? Head extends keyof T
    ? FieldValue<Rest, T[Head]>
    : never
  : P extends keyof T
    ? T[P]
    : never
