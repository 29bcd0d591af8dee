import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { canModifyProduct, type ActorIdentity } from '../../services/policies.js'
import type { Config } from '../../config.js'
import type { ProductRowUpdate } from '../../db/database.js'
import { isForeignKeyViolation, isUniqueViolation } from '../../db/errors.js'
import { accountGone, conflict, forbidden, notFound } from '../../services/errors.js'
import { requestFingerprint, runIdempotently } from '../../idempotency.js'
import type { Repositories } from '../../repositories/index.js'
import type { ProductRecord } from '../../repositories/products.js'
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
import { ifMatchAllows, preconditionFailed, preconditionRequired, productEtag } from './etag.js'

const DUPLICATE_SKU = 'A product with this product_id already exists.'

/**
 * Loads a product the actor may change, locked until the transaction ends: 404 when it does not
 * exist, 403 when it is not theirs.
 */
async function modifiableProduct(repos: Repositories, actor: ActorIdentity, id: number) {
  const product = await repos.products.findByIdForUpdate(id)
  if (!product) throw notFound(`There is no product ${id}.`)
  if (!canModifyProduct(actor, product))
    throw forbidden('Only the owner of this product or an admin may change it.')
  return product
}

const productsWriteRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app, { config }) => {
  /**
   * The version a change must apply to: the one If-Match names (412 when the product has moved
   * on), none without If-Match (last write wins), or 428 when REQUIRE_IF_MATCH demands one.
   */
  function expectedVersion(ifMatch: string | undefined, product: ProductRecord): number | undefined {
    if (ifMatch === undefined) {
      if (config.requireIfMatch) throw preconditionRequired()
      return undefined
    }
    if (!ifMatchAllows(ifMatch, product.version)) throw preconditionFailed(product.version)
    return product.version
  }

  /** Applies a change inside a transaction; a concurrent change that got there first is a 412. */
  async function change(
    actor: ActorIdentity,
    id: number,
    ifMatch: string | undefined,
    changes: ProductRowUpdate,
  ) {
    return app.transaction(async (repos) => {
      const product = await modifiableProduct(repos, actor, id)
      const version = expectedVersion(ifMatch, product)
      let updated: boolean
      try {
        updated = await repos.products.update(id, { ...changes, updated_at: new Date() }, product, version)
      } catch (error) {
        if (isUniqueViolation(error)) throw conflict(DUPLICATE_SKU)
        throw error
      }
      const current = await repos.products.findById(id)
      if (!current) throw notFound(`There is no product ${id}.`)
      if (!updated) throw preconditionFailed(current.version)
      return current
    })
  }

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
      const actor = request.actor
      const create = async (repos: Repositories) => {
        const now = new Date()
        let id: number
        try {
          id = await repos.products.insert({
            ...request.body,
            description: request.body.description ?? '',
            owner_id: actor.id,
            created_at: now,
            updated_at: now,
          })
        } catch (error) {
          if (isUniqueViolation(error)) throw conflict(DUPLICATE_SKU)
          throw error
        }
        const product = (await repos.products.findById(id))!
        return { status: 201, body: product }
      }

      const key = request.headers['idempotency-key']
      const outcome = await (
        key
          ? runIdempotently({
              transaction: app.transaction,
              repos: app.repos,
              userId: actor.id,
              key,
              fingerprint: requestFingerprint('POST /product/', request.body),
              create,
            })
          : app.transaction(create).then((created) => ({ replayed: false as const, ...created }))
      ).catch((error: unknown) => {
        // Both rows name the caller: their account was deleted since the request was authenticated.
        if (isForeignKeyViolation(error)) throw accountGone()
        throw error
      })
      const product = outcome.body as ProductRecord & { id: number }
      if (outcome.replayed) reply.header('idempotent-replayed', 'true')
      else reply.header('etag', productEtag(product.version))
      // Only a 201 is ever stored (refusals are not), so a replay is a 201 too.
      return reply.code(201).header('location', `/product/${product.id}`).send(product)
    },
  )

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
      const product = await change(request.actor, request.params.id, request.headers['if-match'], {
        ...fields,
        description,
      })
      return reply.header('etag', productEtag(product.version)).send(product)
    },
  )

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
      const product = await change(
        request.actor,
        request.params.id,
        request.headers['if-match'],
        request.body,
      )
      return reply.header('etag', productEtag(product.version)).send(product)
    },
  )

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
      await app.transaction(async (repos) => {
        const product = await modifiableProduct(repos, request.actor, request.params.id)
        const version = expectedVersion(request.headers['if-match'], product)
        if (!(await repos.products.delete(product.id, version))) {
          const current = await repos.products.findById(product.id)
          throw current ? preconditionFailed(current.version) : notFound(`There is no product ${product.id}.`)
        }
      })
      return reply.code(204).send(null)
    },
  )
}

export default productsWriteRoutes
