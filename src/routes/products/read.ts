import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { Config } from '../../config.js'
import { invalidInput, notFound } from '../../services/errors.js'
import { createKeysetPaging } from '../../services/pagination.js'
import type {
  ProductFilters,
  ProductPosition,
  ProductSort,
  ProductSortColumn,
} from '../../repositories/products.js'
import { IdParams } from '../../schemas/common.js'
import { problemResponses } from '../../schemas/problem.js'
import type { PRODUCT_SORTS } from '../../schemas/products.js'
import { IfNoneMatchHeaders, ProductListQuery, ProductPage, ProductPublic } from '../../schemas/products.js'
import { productEtag } from './etag.js'

function parseSort(sort: (typeof PRODUCT_SORTS)[number]): ProductSort {
  return sort.startsWith('-')
    ? { column: sort.slice(1) as ProductSortColumn, direction: 'desc' }
    : { column: sort as ProductSortColumn, direction: 'asc' }
}

const productsReadRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const paging = createKeysetPaging(config.secretKey, 'products')

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
      const {
        limit = 20,
        cursor,
        sort: sortParam = '-created_at',
        q,
        min_price,
        max_price,
        owner_id,
      } = request.query
      if (min_price !== undefined && max_price !== undefined && min_price > max_price)
        throw invalidInput('min_price is above max_price.', [
          { in: 'query', field: 'min_price', message: 'must not be above max_price' },
        ])
      const sort = parseSort(sortParam)
      const filters: ProductFilters = {
        text: q?.normalize('NFKC').toLowerCase(),
        minPrice: min_price,
        maxPrice: max_price,
        ownerId: owner_id,
      }
      // The sort is part of what a cursor continues: a cursor of one sort is refused by another.
      const list = { sort: sortParam, filters }
      const after = paging.start(cursor, list, (position): ProductPosition | undefined => {
        if (typeof position.i !== 'number') return undefined
        const value =
          sort.column === 'created_at' && typeof position.v === 'string'
            ? new Date(position.v)
            : sort.column === 'price' && typeof position.v === 'number'
              ? position.v
              : sort.column === 'name' && typeof position.v === 'string'
                ? position.v
                : undefined
        if (value === undefined || (value instanceof Date && Number.isNaN(value.getTime()))) return undefined
        return { value, id: position.i }
      })
      const rows = await app.repos.products.list({ sort, filters, after, limit: limit + 1 })
      return paging.page(rows, limit, list, (product) => {
        const value = product[sort.column]
        return { v: value instanceof Date ? value.toISOString() : value, i: product.id }
      })
    },
  )

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
      const product = await app.repos.products.findById(request.params.id)
      if (!product) throw notFound(`There is no product ${request.params.id}.`)
      const etag = productEtag(product.version)
      reply.header('etag', etag)
      const ifNoneMatch = request.headers['if-none-match']
      // Weak comparison (RFC 9110 §13.1.2); "*" matches any current representation.
      if (
        ifNoneMatch &&
        (ifNoneMatch.trim() === '*' ||
          ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag))
      )
        return reply.code(304).send(null)
      return product
    },
  )
}

export default productsReadRoutes
