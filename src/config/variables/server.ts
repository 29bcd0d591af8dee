import { LOG_LEVELS } from '../fields.js'
import { variable } from '../declare.js'
import { bearerSecret, boolean, integer, oneOf, origins, text, trustedProxies, url } from '../readers.js'

export const NODE_ENV = variable({
  name: 'NODE_ENV',
  type: oneOf(['development', 'production', 'test']),
  default: 'development',
  fills: 'nodeEnv',
  description: '`production` turns on the production checks',
})

export const HOST = variable({
  name: 'HOST',
  type: text('address or host name'),
  default: '127.0.0.1',
  fills: 'host',
  description: 'where to listen; `0.0.0.0` for every interface (containers)',
})

export const PORT = variable({
  name: 'PORT',
  type: integer(0, 65535),
  default: 8000,
  fills: 'port',
  description: 'the port to listen on',
})

export const PUBLIC_URL = variable({
  name: 'PUBLIC_URL',
  type: url('http:', 'https:'),
  default: ({ get }) => {
    const host = get(HOST)
    return `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${get(PORT)}`
  },
  documentedDefault: 'links to `http://HOST:PORT`; no `servers`',
  fills: {
    publicUrl: (address) => address.replace(/\/+$/, ''),
    publicUrlConfigured: (_address, given) => given,
  },
  description:
    'the address clients use: links in emails, and the OpenAPI `servers` (without it, the docs call the address they were opened at)',
  examples: [{ value: 'https://api.example.com' }],
})

export const LOG_LEVEL = variable({
  name: 'LOG_LEVEL',
  type: oneOf(LOG_LEVELS),
  default: ({ get }) => (get(NODE_ENV) === 'test' ? 'silent' : 'info'),
  documentedDefault: '`info`, `silent` in test',
  fills: 'logLevel',
  description: 'pino level (`silent` turns logs off)',
})

export const METRICS_TOKEN = variable({
  name: 'METRICS_TOKEN',
  type: bearerSecret(16),
  default: undefined,
  fills: 'metricsToken',
  description:
    '`GET /metrics` (Prometheus) answers only `Bearer <token>`; unset: no `/metrics`. A token, not a second port: one port, TLS and proxy to run',
})

export const BODY_LIMIT_BYTES = variable({
  name: 'BODY_LIMIT_BYTES',
  type: integer(1024, 10 * 1024 * 1024),
  default: 64 * 1024,
  fills: 'bodyLimitBytes',
  description: 'largest accepted request body',
})

export const REQUEST_TIMEOUT_MS = variable({
  name: 'REQUEST_TIMEOUT_MS',
  type: integer(100, 600_000),
  default: 30_000,
  fills: 'requestTimeoutMs',
  description: 'a request (headers and body) must arrive within this (headers within 10 s at most), else 408',
})

export const KEEP_ALIVE_TIMEOUT_MS = variable({
  name: 'KEEP_ALIVE_TIMEOUT_MS',
  type: integer(100, 600_000),
  default: 72_000,
  fills: 'keepAliveTimeoutMs',
  description: 'an idle keep-alive connection is closed after this',
})

export const READINESS_TIMEOUT_MS = variable({
  name: 'READINESS_TIMEOUT_MS',
  type: integer(100, 60_000),
  default: 2_000,
  fills: 'readinessTimeoutMs',
  description: '`/readyz` answers within this (503 when a check has not answered by then)',
})

export const SHUTDOWN_DRAIN_MS = variable({
  name: 'SHUTDOWN_DRAIN_MS',
  type: integer(0, 300_000),
  // Load balancers need a few probe periods to notice; a person pressing Ctrl-C does not wait.
  default: ({ get }) => (get(NODE_ENV) === 'production' ? 5_000 : 0),
  documentedDefault: '`0`, `5000` in production',
  fills: 'shutdownDrainMs',
  description: 'on SIGTERM/SIGINT `/readyz` fails this long before the server stops listening',
})

export const SHUTDOWN_TIMEOUT_MS = variable({
  name: 'SHUTDOWN_TIMEOUT_MS',
  type: integer(100, 600_000),
  default: 10_000,
  fills: 'shutdownTimeoutMs',
  description: 'after the drain, in-flight requests have this long to finish',
})

export const TRUST_PROXY = variable({
  name: 'TRUST_PROXY',
  type: trustedProxies,
  default: false,
  fills: 'trustProxy',
  description: 'the proxies whose `X-Forwarded-For` to believe; `false`: none',
})

export const RATE_LIMIT_ENABLED = variable({
  name: 'RATE_LIMIT_ENABLED',
  type: boolean,
  default: true,
  fills: 'rateLimit.enabled',
  description: 'past a limit: 429 problem+json with `Retry-After`; counted in Redis when `REDIS_URL` is set',
})

export const RATE_LIMIT_PER_MINUTE = variable({
  name: 'RATE_LIMIT_PER_MINUTE',
  type: integer(1, 1_000_000),
  default: 600,
  fills: { 'rateLimit.perIp': (requests) => requests, 'rateLimit.windowMs': () => 60_000 },
  description: 'requests per client IP per minute, on every route',
})

export const RATE_LIMIT_ATTEMPTS_PER_IP = variable({
  name: 'RATE_LIMIT_ATTEMPTS_PER_IP',
  type: integer(1, 100_000),
  default: 30,
  fills: 'rateLimit.attemptsPerIp',
  description: 'login, registration, refresh, recovery, reset, verification: attempts per IP per window',
})

export const RATE_LIMIT_ATTEMPTS_PER_ACCOUNT = variable({
  name: 'RATE_LIMIT_ATTEMPTS_PER_ACCOUNT',
  type: integer(1, 100_000),
  default: 10,
  fills: 'rateLimit.attemptsPerAccount',
  description:
    'the same attempts per account (login name, email or user) per window; logins count failures only',
})

export const RATE_LIMIT_ATTEMPT_WINDOW_SECONDS = variable({
  name: 'RATE_LIMIT_ATTEMPT_WINDOW_SECONDS',
  type: integer(1, 86_400),
  default: 900,
  fills: { 'rateLimit.attemptWindowMs': (seconds) => seconds * 1000 },
  description: "the attempts' window; a block lifts by itself when it ends",
})

export const CORS_ORIGINS = variable({
  name: 'CORS_ORIGINS',
  type: origins,
  default: [],
  fills: 'corsOrigins',
  description: 'allowed browser origins; none by default',
})

export const SERVER_VARIABLES = [
  NODE_ENV,
  HOST,
  PORT,
  PUBLIC_URL,
  LOG_LEVEL,
  METRICS_TOKEN,
  BODY_LIMIT_BYTES,
  REQUEST_TIMEOUT_MS,
  KEEP_ALIVE_TIMEOUT_MS,
  READINESS_TIMEOUT_MS,
  SHUTDOWN_DRAIN_MS,
  SHUTDOWN_TIMEOUT_MS,
  TRUST_PROXY,
  RATE_LIMIT_ENABLED,
  RATE_LIMIT_PER_MINUTE,
  RATE_LIMIT_ATTEMPTS_PER_IP,
  RATE_LIMIT_ATTEMPTS_PER_ACCOUNT,
  RATE_LIMIT_ATTEMPT_WINDOW_SECONDS,
  CORS_ORIGINS,
]
