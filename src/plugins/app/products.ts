import fp from 'fastify-plugin'
import type { Config } from '../../config.js'
import { createProductsService, type ProductsService } from '../../services/products.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The catalogue's rules (services/products.ts). */
    products: ProductsService
  }
}

export default fp<{ config: Config }>(
  async (app, { config }) => {
    app.decorate(
      'products',
      createProductsService({
        repos: app.repos,
        transaction: app.transaction,
        secretKey: config.secretKey,
        requireIfMatch: config.requireIfMatch,
        clock: app.clock,
      }),
    )
  },
  { name: 'products', dependencies: ['db'] },
)
