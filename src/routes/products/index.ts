import { Type } from 'typebox'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { canModifyProduct } from '../../auth/policies.js'
import type { Config } from '../../config.js'
import type { ProductRowUpdate } from '../../db/database.js'
import { isUniqueViolation } from '../../db/dialect.js'
import { conflict, forbidden, notFound } from '../../errors.js'
import { createCursorCodec, invalidCursor } from '../../pagination.js'
import type { Repositories } from '../../plugins/app/db.js'
import { bearerSecurity } from '../../plugins/external/swagger.js'
import { IdParams } from '../../schemas/common.js'
import { problemResponses } from '../../schemas/problem.js'
import {
  ProductCreate,
  ProductListQuery,
  ProductPage,
  ProductPublic,
  ProductReplace,
  ProductUpdate,
} from '../../schemas/products.js'
import type { ActorIdentity } from '../../auth/policies.js'

const DUPLICATE_SKU = 'A product with this product_id already exists.'

/** Loads a product the actor may change: 404 when it does not exist, 403 when it is not theirs. */
async function modifiableProduct(repos: Repositories, actor: ActorIdentity, id: number) {
  const product = await repos.products.findById(id)
  if (!product) throw notFound(`There is no product ${id}.`)
  if (!canModifyProduct(actor, product))
    throw forbidden('Only the owner of this product or an admin may change it.')
  return product
}

async function saveChanges(repos: Repositories, id: number, changes: ProductRowUpdate) {
  try {
    await repos.products.update(id, { ...changes, updated_at: new Date() })
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict(DUPLICATE_SKU)
    throw error
  }
  const product = await repos.products.findById(id)
  if (!product) throw notFound(`There is no product ${id}.`)
  return product
}

const productsRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  const cursors = createCursorCodec(`${config.secretKey}:products`)
  // Every product route needs an access token.
  app.addHook('onRequest', app.authenticate)

  app.post(
    '/product/',
    {
      schema: {
        tags: ['products'],
        summary: 'Create a product (you become its owner)',
        security: bearerSecurity,
        body: ProductCreate,
        response: { 201: ProductPublic, ...problemResponses(401, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const now = new Date()
      let id: number
      try {
        id = await app.repos.products.insert({
          ...request.body,
          description: request.body.description ?? '',
          owner_id: request.actor.id,
          created_at: now,
          updated_at: now,
        })
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict(DUPLICATE_SKU)
        throw error
      }
      const product = await app.repos.products.findById(id)
      return reply.code(201).header('location', `/product/${id}`).send(product)
    },
  )

  app.get(
    '/product/',
    {
      schema: {
        tags: ['products'],
        summary: 'List products, newest first',
        security: bearerSecurity,
        querystring: ProductListQuery,
        response: { 200: ProductPage, ...problemResponses(401, 422) },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 20
      let after: { created_at: Date; id: number } | undefined
      if (request.query.cursor) {
        const position = cursors.decode(request.query.cursor)
        const createdAt = typeof position.c === 'string' ? new Date(position.c) : undefined
        if (!createdAt || Number.isNaN(createdAt.getTime()) || typeof position.i !== 'number')
          throw invalidCursor()
        after = { created_at: createdAt, id: position.i }
      }
      const rows = await app.repos.products.list(after, limit + 1)
      const items = rows.slice(0, limit)
      const last = items.at(-1)
      return {
        items,
        next_cursor:
          rows.length > limit && last
            ? cursors.encode({ c: last.created_at.toISOString(), i: last.id })
            : null,
      }
    },
  )

  app.get(
    '/product/:id',
    {
      schema: {
        tags: ['products'],
        summary: 'One product',
        security: bearerSecurity,
        params: IdParams,
        response: { 200: ProductPublic, ...problemResponses(401, 404, 422) },
      },
    },
    async (request) => {
      const product = await app.repos.products.findById(request.params.id)
      if (!product) throw notFound(`There is no product ${request.params.id}.`)
      return product
    },
  )

  app.put(
    '/product/:id',
    {
      schema: {
        tags: ['products'],
        summary: 'Replace a product (owner or admin)',
        security: bearerSecurity,
        params: IdParams,
        body: ProductReplace,
        response: { 200: ProductPublic, ...problemResponses(401, 403, 404, 409, 415, 422) },
      },
    },
    async (request) =>
      app.transaction(async (repos) => {
        await modifiableProduct(repos, request.actor, request.params.id)
        const { description = '', ...fields } = request.body
        return saveChanges(repos, request.params.id, { ...fields, description })
      }),
  )

  app.patch(
    '/product/:id',
    {
      schema: {
        tags: ['products'],
        summary: 'Change some fields of a product (owner or admin)',
        security: bearerSecurity,
        params: IdParams,
        body: ProductUpdate,
        response: { 200: ProductPublic, ...problemResponses(401, 403, 404, 409, 415, 422) },
      },
    },
    async (request) =>
      app.transaction(async (repos) => {
        await modifiableProduct(repos, request.actor, request.params.id)
        return saveChanges(repos, request.params.id, request.body)
      }),
  )

  app.delete(
    '/product/:id',
    {
      schema: {
        tags: ['products'],
        summary: 'Delete a product (owner or admin)',
        security: bearerSecurity,
        params: IdParams,
        response: { 204: Type.Null({ description: 'Deleted' }), ...problemResponses(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      await app.transaction(async (repos) => {
        await modifiableProduct(repos, request.actor, request.params.id)
        await repos.products.delete(request.params.id)
      })
      return reply.code(204).send(null)
    },
  )
}

export default productsRoutes
