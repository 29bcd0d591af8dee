import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../../config.js'
import productsReadRoutes from './read.js'
import productsWriteRoutes from './write.js'

/** Products: every route needs an access token (registered authenticated). */
const productsRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  await app.register(productsReadRoutes, { config })
  await app.register(productsWriteRoutes, { config })
}

export default productsRoutes
