import type { ProductRowUpdate } from '../db/database.js'
import { isForeignKeyViolation, isUniqueViolation } from '../db/errors.js'
import type { Repositories } from '../repositories/index.js'
import type {
  ProductFilters,
  ProductPosition,
  ProductRecord,
  ProductSort,
  ProductSortColumn,
} from '../repositories/products.js'
import {
  accountGone,
  conflict,
  forbidden,
  invalidInput,
  notFound,
  staleVersion,
  versionRequired,
  type DomainError,
} from './errors.js'
import { requestFingerprint, runIdempotently } from './idempotency.js'
import { dateOf, type Clock } from './clock.js'
import { createKeysetPaging, type Page } from './pagination.js'
import { canModifyProduct, type ActorIdentity } from './policies.js'

const DUPLICATE_SKU = 'A product with this product_id already exists.'

/**
 * The name a creation's fingerprint is made under. Stored with every Idempotency-Key: it stays as
 * it is, so that keys stored before keep matching their retries.
 */
const CREATE_OPERATION = 'POST /product/'

/** A sort column, descending when it starts with "-". */
export type ProductSortKey = ProductSortColumn | `-${ProductSortColumn}`

export interface ProductListRequest {
  limit: number
  /** The next_cursor of the previous page; none for the first page. */
  cursor?: string
  sort: ProductSortKey
  /** Text to find in the SKU, name or description (any case and Unicode form). */
  text?: string
  minPrice?: number
  maxPrice?: number
  ownerId?: number
}

/**
 * Which versions a change may apply to (what an If-Match names); a change that names none applies
 * to any version (last write wins), unless requireIfMatch demands one.
 */
export interface VersionCondition {
  allows(version: number): boolean
}

/** The fields of a new product, as its creator sends them. */
export interface ProductFields {
  product_id: string
  name: string
  description?: string
  price: number
}

export type ProductChanges = Omit<ProductRowUpdate, 'search_text' | 'version' | 'updated_at'>

export interface ProductCreation {
  product: ProductRecord
  /** A retry with the same Idempotency-Key: the product the first request created, created again by none. */
  replayed: boolean
}

/** The tag of a product's version (a strong ETag): it changes with every change of the product. */
export function productVersionTag(version: number): string {
  return `"${version}"`
}

function productChanged(version: number): DomainError {
  return staleVersion(
    'The product has changed since you read it: GET it again and retry with its new ETag.',
    productVersionTag(version),
  )
}

export interface ProductsServiceDependencies {
  repos: Repositories
  transaction: <R>(work: (repos: Repositories) => Promise<R>) => Promise<R>
  /** Signs the page cursors (config.secretKey). */
  secretKey: string
  /** A change must name the version it changes (REQUIRE_IF_MATCH). */
  requireIfMatch: boolean
  clock: Clock
}

export type ProductsService = ReturnType<typeof createProductsService>

/** The catalogue's rules: who may change a product, which version a change applies to, idempotent creation. */
export function createProductsService(deps: ProductsServiceDependencies) {
  const { repos, transaction } = deps
  const list = createProductList(deps)
  const changes = createProductChanges(deps)
  return {
    list,
    async get(id: number): Promise<ProductRecord> {
      const product = await repos.products.findById(id)
      if (!product) throw notFound(`There is no product ${id}.`)
      return product
    },
    ...changes,
    /**
     * Creates a product owned by the actor. With an idempotency key, a retry with the same key and
     * fields answers the first creation again (replayed) and creates nothing.
     */
    async create(
      actor: ActorIdentity,
      fields: ProductFields,
      idempotencyKey?: string,
    ): Promise<ProductCreation> {
      const create = async (trx: Repositories) => ({
        status: 201,
        body: await insertProduct(trx, actor, fields, dateOf(deps.clock)),
      })
      const outcome = await (
        idempotencyKey
          ? runIdempotently({
              transaction,
              repos,
              userId: actor.id,
              key: idempotencyKey,
              fingerprint: requestFingerprint(CREATE_OPERATION, fields),
              create,
              now: () => dateOf(deps.clock),
            })
          : // One statement (the repository answers the row it stored): no transaction to open.
            create(repos).then((created) => ({ replayed: false as const, ...created }))
      ).catch((error: unknown) => {
        // Both rows name the caller: their account was deleted since the request was authenticated.
        if (isForeignKeyViolation(error)) throw accountGone()
        throw error
      })
      // Only a creation is ever stored (refusals are not), so a replay is the product created.
      return { product: outcome.body as ProductRecord, replayed: outcome.replayed }
    },
  }
}

async function insertProduct(repos: Repositories, actor: ActorIdentity, fields: ProductFields, now: Date) {
  try {
    return await repos.products.insert({
      ...fields,
      description: fields.description ?? '',
      owner_id: actor.id,
      created_at: now,
      updated_at: now,
    })
  } catch (error) {
    if (isUniqueViolation(error)) throw conflict(DUPLICATE_SKU)
    throw error
  }
}

/** Changes and deletions: only by the owner or an admin, and only of the version they name. */
function createProductChanges({ transaction, requireIfMatch, clock }: ProductsServiceDependencies) {
  /**
   * The version a change must apply to: the one the condition names (412 when the product has
   * moved on), none without a condition (last write wins), or 428 when requireIfMatch demands one.
   */
  function expectedVersion(condition: VersionCondition | undefined, product: ProductRecord) {
    if (condition === undefined) {
      if (requireIfMatch)
        throw versionRequired(
          'Send If-Match with the ETag from GET /product/{id}: changes must name the version they change.',
        )
      return undefined
    }
    if (!condition.allows(product.version)) throw productChanged(product.version)
    return product.version
  }

  return {
    /** Applies changes in a transaction; a concurrent change that got there first is a 412. */
    change(
      actor: ActorIdentity,
      id: number,
      condition: VersionCondition | undefined,
      changes: ProductChanges,
    ) {
      return transaction(async (repos) => {
        const product = await modifiableProduct(repos, actor, id)
        const version = expectedVersion(condition, product)
        let updated: boolean
        try {
          updated = await repos.products.update(
            id,
            { ...changes, updated_at: dateOf(clock) },
            product,
            version,
          )
        } catch (error) {
          if (isUniqueViolation(error)) throw conflict(DUPLICATE_SKU)
          throw error
        }
        // modifiableProduct locked the row and expectedVersion checked its version: neither check
        // below can fail while the lock holds. They stay, so that a lock that did not hold (another
        // engine, another isolation level) answers 404 or 412 rather than a change lost in silence.
        const current = await repos.products.findById(id)
        // Stryker disable next-line ConditionalExpression,StringLiteral: unreachable while the row is locked (see above).
        if (!current) throw notFound(`There is no product ${id}.`)
        // Stryker disable next-line ConditionalExpression: unreachable while the row is locked (see above).
        if (!updated) throw productChanged(current.version)
        return current
      })
    },

    async remove(actor: ActorIdentity, id: number, condition: VersionCondition | undefined): Promise<void> {
      await transaction(async (repos) => {
        const product = await modifiableProduct(repos, actor, id)
        const version = expectedVersion(condition, product)
        // As in change: unreachable while the row is locked; kept against a lock that did not hold.
        // Stryker disable next-line all: unreachable while the row is locked.
        if (!(await repos.products.delete(product.id, version))) throw await changedOrGone(repos, product.id)
      })
    },
  }
}

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

function parseSort(sort: ProductSortKey): ProductSort {
  return sort.startsWith('-')
    ? { column: sort.slice(1) as ProductSortColumn, direction: 'desc' }
    : { column: sort as ProductSortColumn, direction: 'asc' }
}

/** The position a cursor holds, if it is one of a list in this sort. */
function readPosition(sort: ProductSort, position: Record<string, unknown>): ProductPosition | undefined {
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
}

/** One page of the catalogue: filters, a sort, keyset pagination. */
function createProductList({ repos, secretKey }: ProductsServiceDependencies) {
  const paging = createKeysetPaging(secretKey, 'products')
  return async (request: ProductListRequest): Promise<Page<ProductRecord>> => {
    const { limit, cursor, minPrice, maxPrice } = request
    // A missing bound is open: it never makes the range empty.
    if ((minPrice ?? -Infinity) > (maxPrice ?? Infinity))
      throw invalidInput('min_price is above max_price.', [
        { in: 'query', field: 'min_price', message: 'must not be above max_price' },
      ])
    const sort = parseSort(request.sort)
    const filters: ProductFilters = {
      text: request.text?.normalize('NFKC').toLowerCase(),
      minPrice,
      maxPrice,
      ownerId: request.ownerId,
    }
    // The sort is part of what a cursor continues: a cursor of one sort is refused by another.
    const list = { sort: request.sort, filters }
    const after = paging.start(cursor, list, (position) => readPosition(sort, position))
    const rows = await repos.products.list({ sort, filters, after, limit: limit + 1 })
    return paging.page(rows, limit, list, (product) => {
      const value = product[sort.column]
      return { v: value instanceof Date ? value.toISOString() : value, i: product.id }
    })
  }
}

// Stryker disable all: only reached when a locked row's change did not apply (see remove).
/** Why a change of a locked row did not apply: it moved on (412 with its version) or is gone (404). */
async function changedOrGone(repos: Repositories, id: number): Promise<DomainError> {
  const current = await repos.products.findById(id)
  return current ? productChanged(current.version) : notFound(`There is no product ${id}.`)
}
