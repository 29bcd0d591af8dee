import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import productsReadRoutes from './read.js'
import productsWriteRoutes from './write.js'

/** Products: every route needs an access token (registered authenticated). */
const productsRoutes: FastifyPluginAsyncTypebox = async (app) => {
  await app.register(productsReadRoutes)
  await app.register(productsWriteRoutes)
}

export default productsRoutes
