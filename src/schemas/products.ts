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
  description: 'in minor currency units, e.g. cents: 12.99 is sent as 1299; at least 0',
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

export const PRODUCT_SORTS = ['created_at', '-created_at', 'price', '-price', 'name', '-name'] as const

export const ProductListQuery = Type.Object(
  {
    limit: Type.Optional(PageLimit),
    cursor: Type.Optional(PageCursor),
    sort: Type.Optional(
      Type.Union(
        PRODUCT_SORTS.map((sort) => Type.Literal(sort)),
        { description: 'created_at, price or name; a leading "-" sorts descending. Default -created_at.' },
      ),
    ),
    q: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        pattern: STORABLE_TEXT,
        description: 'Text to find in product_id, name or description (case-insensitive).',
      }),
    ),
    min_price: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    max_price: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
    owner_id: Type.Optional(Id),
  },
  { additionalProperties: false },
)
export type ProductListQuery = Static<typeof ProductListQuery>

export const ProductPage = Type.Object(
  { items: Type.Array(ProductPublic), next_cursor: NextCursor },
  { additionalProperties: false },
)

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7E]+$',
      description:
        'A unique key (e.g. a UUID) per intended creation: a retry with the same key and body returns the ' +
        'first response instead of creating again. Keys are kept 24 h.',
    }),
  ),
})

export const IfMatchHeaders = Type.Object({
  'if-match': Type.Optional(
    Type.String({
      maxLength: 1024,
      description:
        'The ETag from GET /product/{id}: the change applies only if the product is still that version.',
    }),
  ),
})

export const IfNoneMatchHeaders = Type.Object({
  'if-none-match': Type.Optional(
    Type.String({
      maxLength: 1024,
      description: 'An ETag you hold (or "*"): when the product is still that version, the answer is 304.',
    }),
  ),
})
