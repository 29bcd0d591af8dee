import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { TypedApp } from '../../http/typed-app.js'
import { IdParams } from '../../schemas/common.js'
import { problemResponses } from '../../schemas/problem.js'
import { IfNoneMatchHeaders, ProductListQuery, ProductPage, ProductPublic } from '../../schemas/products.js'
import { ifNoneMatchHits, productEtag } from './etag.js'

function registerListProducts(app: TypedApp) {
  app.get(
    '/product/',
    {
      schema: {
        tags: ['products'],
        summary: 'List products: filters, sort, keyset pagination',
        description:
          'Pass `next_cursor` back as `cursor` for the next page, with the same sort and filters. A page deep in the ' +
          'list costs what the first does.',
        querystring: ProductListQuery,
        response: { 200: ProductPage, ...problemResponses(422) },
      },
    },
    async (request) => {
      const { limit = 20, cursor, sort = '-created_at', q, min_price, max_price, owner_id } = request.query
      return app.products.list({
        limit,
        cursor,
        sort,
        text: q,
        minPrice: min_price,
        maxPrice: max_price,
        ownerId: owner_id,
      })
    },
  )
}

function registerGetProduct(app: TypedApp) {
  app.get(
    '/product/:id',
    {
      schema: {
        tags: ['products'],
        summary: 'One product, with its ETag',
        description:
          'The ETag changes with every change; send it back as If-Match to change the product safely.',
        params: IdParams,
        headers: IfNoneMatchHeaders,
        response: {
          200: ProductPublic,
          304: Type.Null({ description: 'Not modified (If-None-Match matched the ETag)' }),
          ...problemResponses(404, 422),
        },
      },
    },
    async (request, reply) => {
      const product = await app.products.get(request.params.id)
      const etag = productEtag(product.version)
      reply.header('etag', etag)
      if (ifNoneMatchHits(request.headers['if-none-match'], etag)) return reply.code(304).send(null)
      return product
    },
  )
}

/** Reading the catalogue: a page of products, one product. */
const productsReadRoutes: FastifyPluginAsyncTypebox = async (app) => {
  registerListProducts(app)
  registerGetProduct(app)
}

export default productsReadRoutes
