import { Type, type Static } from 'typebox'
import { Id, NextCursor, PageCursor, PageLimit, STORABLE_TEXT, Timestamp } from './common.js'

const Sku = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$',
  description: 'The SKU: unique; letters, digits, ".", "_" and "-".',
  examples: ['SKU-1001'],
})
/**
 * Text every engine stores as sent: PostgreSQL refuses U+0000 (a 500 if it reached the database)
 * and a lone UTF-16 surrogate is not Unicode (each engine would store something else).
 */
const ProductName = Type.String({
  minLength: 1,
  maxLength: 200,
  pattern: STORABLE_TEXT,
  examples: ['Mechanical keyboard'],
})
const Description = Type.String({
  maxLength: 5000,
  pattern: STORABLE_TEXT,
  examples: ['Tenkeyless, brown switches.'],
})
/** Minor currency units (cents); bounded so that every engine stores exactly what was accepted. */
const Price = Type.Integer({
  minimum: 0,
  maximum: Number.MAX_SAFE_INTEGER,
  description: 'In minor currency units (e.g. cents), ≥ 0.',
  examples: [12999],
})

export const ProductPublic = Type.Object(
  {
    id: Id,
    product_id: Type.String({ examples: ['SKU-1001'] }),
    name: Type.String({ examples: ['Mechanical keyboard'] }),
    description: Type.String(),
    price: Type.Integer({ examples: [12999] }),
    owner_id: Type.Union([Id, Type.Null()], { description: 'null once the owner is deleted.' }),
    created_at: Timestamp,
    updated_at: Timestamp,
  },
  { additionalProperties: false },
)
export type ProductPublic = Static<typeof ProductPublic>

export const ProductCreate = Type.Object(
  {
    product_id: Sku,
    name: ProductName,
    description: Type.Optional(Description),
    price: Price,
  },
  {
    additionalProperties: false,
    examples: [
      { product_id: 'SKU-1001', name: 'Mechanical keyboard', description: 'Tenkeyless.', price: 12999 },
    ],
  },
)
export type ProductCreate = Static<typeof ProductCreate>

/** PUT: the whole product, as on creation. */
export const ProductReplace = Type.Object(
  {
    product_id: Sku,
    name: ProductName,
    description: Type.Optional(Description),
    price: Price,
  },
  { additionalProperties: false },
)
export type ProductReplace = Static<typeof ProductReplace>

export const ProductUpdate = Type.Object(
  {
    product_id: Type.Optional(Sku),
    name: Type.Optional(ProductName),
    description: Type.Optional(Description),
    price: Type.Optional(Price),
  },
  { additionalProperties: false, minProperties: 1, examples: [{ price: 9999 }] },
)
export type ProductUpdate = Static<typeof ProductUpdate>

export const ProductListQuery = Type.Object(
  {
    limit: Type.Optional(PageLimit),
    cursor: Type.Optional(PageCursor),
  },
  { additionalProperties: false },
)
export type ProductListQuery = Static<typeof ProductListQuery>

export const ProductPage = Type.Object(
  { items: Type.Array(ProductPublic), next_cursor: NextCursor },
  { additionalProperties: false },
)
