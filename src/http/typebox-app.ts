import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'

/**
 * The app as a route plugin receives it (TypeBox schemas type the requests): what a function that
 * registers one route takes.
 */
export type TypeBoxApp = Parameters<FastifyPluginAsyncTypebox>[0]
