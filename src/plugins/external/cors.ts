import cors from '@fastify/cors'
import fp from 'fastify-plugin'
import type { Config } from '../../config.js'

/** Request headers a browser app may send across origins. */
const ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Idempotency-Key',
  'If-Match',
  'If-None-Match',
  'X-Request-Id',
]

/** Response headers a browser app may read across origins (beyond the CORS-safelisted ones). */
const EXPOSED_HEADERS = [
  'ETag',
  'Location',
  'Retry-After',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'WWW-Authenticate',
  'Idempotent-Replayed',
  'X-Request-Id',
]

/**
 * CORS for the origins of CORS_ORIGINS only. None by default: then no CORS header is ever sent and
 * browsers keep other sites' pages away from the API. Credentials (cookies) are never allowed: the
 * API authenticates with bearer tokens, which a page sends explicitly. Every answer varies by
 * Origin, so a shared cache never serves one origin's answer to another.
 */
export default fp<{ config: Config }>(
  async (app, { config }) => {
    if (config.corsOrigins.length === 0) return
    const allowed = new Set(config.corsOrigins)
    await app.register(cors, {
      // A refused or absent origin gets no CORS header at all (and its preflight no 204).
      origin: (origin, callback) =>
        callback(null, origin !== undefined && allowed.has(origin) ? origin : false),
      credentials: false,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: EXPOSED_HEADERS,
      maxAge: 600,
      strictPreflight: true,
    })
  },
  { name: 'cors' },
)
