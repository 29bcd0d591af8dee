import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { RouteOptions } from 'fastify'
import { problemResponses } from '../schemas/problem.js'
import { bearerSecurity } from './openapi.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Open to an admin who has no second factor yet where REQUIRE_MFA_FOR_ADMINS is on: what
     * enrolling one takes (services/enrolment-policy.ts). Every other authenticated route is not.
     */
    beforeMfaEnrolment?: boolean
  }
}

/** The route options of a route an admin without a second factor may use (to enrol one). */
export const beforeMfaEnrolment = { config: { beforeMfaEnrolment: true } } as const

/**
 * The one way a route needs an access token: it is registered inside `authenticated(…)`, an
 * encapsulated group whose onRequest hook authenticates every request (401 problem+json with
 * `WWW-Authenticate: Bearer` otherwise; the rate limit's hook still runs first) and whose onRoute
 * hook writes what that means into each route's contract: the bearer `security` requirement and
 * the 401 response. Routes never declare them by hand.
 *
 *   await app.register(authenticated(productsRoutes), { config })
 *   await app.register(authenticated(async (api) => { api.post('/logout', …) }))
 */
export function authenticated<Options extends object = Record<never, never>>(
  routes: FastifyPluginAsyncTypebox<Options>,
): FastifyPluginAsyncTypebox<Options> {
  return async (app, options) => {
    app.addHook('onRoute', declareAuthentication)
    app.addHook('onRequest', app.authenticate)
    await routes(app, options)
  }
}

function declareAuthentication(route: RouteOptions) {
  const schema = route.schema as { security?: unknown; response?: Record<string, unknown> } | undefined
  if (!schema || (schema as { hide?: boolean }).hide) return
  schema.security = bearerSecurity
  if (schema.response && !('401' in schema.response)) Object.assign(schema.response, problemResponses(401))
}
