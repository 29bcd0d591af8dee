import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'

/** The app as a route plugin sees it (TypeBox types its requests): what a `registerX(app)` takes. */
export type TypedApp = Parameters<FastifyPluginAsyncTypebox>[0]
