import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { TypedApp } from '../../http/typed-app.js'
import { IdParams } from '../../schemas/common.js'
import { problemResponses } from '../../schemas/problem.js'
import {
  IdempotencyHeaders,
  IfMatchHeaders,
  ProductCreate,
  ProductPublic,
  ProductReplace,
  ProductUpdate,
} from '../../schemas/products.js'
import { ifMatchCondition, productEtag } from './etag.js'

function registerCreateProduct(app: TypedApp) {
  app.post(
    '/product/',
    {
      schema: {
        tags: ['products'],
        summary: 'Create a product (you become its owner)',
        description:
          'With an Idempotency-Key header, a retry with the same key and body answers the first response again ' +
          '(same id, 201) and creates nothing; the same key with another body is a 422.',
        headers: IdempotencyHeaders,
        body: ProductCreate,
        response: { 201: ProductPublic, ...problemResponses(409, 415, 422) },
      },
    },
    async (request, reply) => {
      const { product, replayed } = await app.products.create(
        request.actor,
        request.body,
        request.headers['idempotency-key'],
      )
      if (replayed) reply.header('idempotent-replayed', 'true')
      else reply.header('etag', productEtag(product.version))
      // Only a 201 is ever stored (refusals are not), so a replay is a 201 too.
      return reply.code(201).header('location', `/product/${product.id}`).send(product)
    },
  )
}

function registerReplaceProduct(app: TypedApp) {
  app.put(
    '/product/:id',
    {
      schema: {
        tags: ['products'],
        summary: 'Replace a product (owner or admin)',
        description: 'With If-Match, only if the product is still the version of that ETag (else 412).',
        params: IdParams,
        headers: IfMatchHeaders,
        body: ProductReplace,
        response: { 200: ProductPublic, ...problemResponses(403, 404, 409, 412, 415, 422, 428) },
      },
    },
    async (request, reply) => {
      const { description = '', ...fields } = request.body
      const product = await app.products.change(
        request.actor,
        request.params.id,
        ifMatchCondition(request.headers['if-match']),
        { ...fields, description },
      )
      return reply.header('etag', productEtag(product.version)).send(product)
    },
  )
}

function registerUpdateProduct(app: TypedApp) {
  app.patch(
    '/product/:id',
    {
      schema: {
        tags: ['products'],
        summary: 'Change some fields of a product (owner or admin)',
        description: 'With If-Match, only if the product is still the version of that ETag (else 412).',
        params: IdParams,
        headers: IfMatchHeaders,
        body: ProductUpdate,
        response: { 200: ProductPublic, ...problemResponses(403, 404, 409, 412, 415, 422, 428) },
      },
    },
    async (request, reply) => {
      const product = await app.products.change(
        request.actor,
        request.params.id,
        ifMatchCondition(request.headers['if-match']),
        request.body,
      )
      return reply.header('etag', productEtag(product.version)).send(product)
    },
  )
}

function registerDeleteProduct(app: TypedApp) {
  app.delete(
    '/product/:id',
    {
      schema: {
        tags: ['products'],
        summary: 'Delete a product (owner or admin)',
        description: 'With If-Match, only if the product is still the version of that ETag (else 412).',
        params: IdParams,
        headers: IfMatchHeaders,
        response: {
          204: Type.Null({ description: 'Deleted' }),
          ...problemResponses(403, 404, 412, 422, 428),
        },
      },
    },
    async (request, reply) => {
      await app.products.remove(
        request.actor,
        request.params.id,
        ifMatchCondition(request.headers['if-match']),
      )
      return reply.code(204).send(null)
    },
  )
}

/** Changing the catalogue: create, replace, change some fields, delete. */
const productsWriteRoutes: FastifyPluginAsyncTypebox = async (app) => {
  registerCreateProduct(app)
  registerReplaceProduct(app)
  registerUpdateProduct(app)
  registerDeleteProduct(app)
}

export default productsWriteRoutes
