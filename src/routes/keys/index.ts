import type { FastifyInstance } from 'fastify'
import type { Config } from '../../config.js'
import { Discovery, Jwks } from '../../schemas/keys.js'
import { JWKS_MAX_AGE_SECONDS } from '../../services/signing-keys.js'

/**
 * What another service needs to verify our access tokens without sharing a secret: the public
 * keys (RFC 7517) and where to find them (RFC 8414 style discovery). Both public and cacheable:
 * a rotation publishes the next key PUBLISH_AHEAD_SECONDS before it signs, longer than a cache
 * of JWKS_MAX_AGE_SECONDS keeps the old set.
 */
export default async function keyRoutes(app: FastifyInstance, { config }: { config: Config }) {
  const cacheControl = `public, max-age=${JWKS_MAX_AGE_SECONDS}`

  app.get(
    '/.well-known/jwks.json',
    {
      schema: {
        tags: ['keys'],
        summary: 'The public keys that verify access tokens (JWKS)',
        description:
          'Every key that verifies access tokens now, named by the `kid` of the tokens. Cache it for at most the `max-age` of Cache-Control; a token naming a `kid` not in a cached set means the set must be fetched again.',
        response: { 200: Jwks },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', cacheControl)
      return { keys: await app.signingKeys.publicKeys() }
    },
  )

  app.get(
    '/.well-known/openid-configuration',
    {
      schema: {
        tags: ['keys'],
        summary: 'Where the keys and the token endpoint are (discovery)',
        response: { 200: Discovery },
      },
    },
    async (_request, reply) => {
      reply.header('cache-control', cacheControl)
      return {
        issuer: config.jwtIssuer,
        jwks_uri: `${config.publicUrl}/.well-known/jwks.json`,
        token_endpoint: `${config.publicUrl}/login`,
        grant_types_supported: ['password'],
        token_endpoint_auth_methods_supported: ['none'],
        subject_types_supported: ['public'],
        access_token_signing_alg_values_supported: [...app.signingKeys.publishedAlgorithms()],
      }
    },
  )
}
