import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely'

/** Timestamps are UTC instants: written and read as `Date` on every engine (see dialect.ts). */
type Timestamp = ColumnType<Date, Date, Date>

export interface UsersTable {
  id: Generated<number>
  name: string
  /** Lower-cased `name`: the column that makes names unique regardless of case, on every engine. */
  name_key: string
  /** Stored normalised (trimmed, lower-cased), so uniqueness is the same on every engine. */
  email: string
  password_hash: string
  role: 'user' | 'admin'
  is_active: boolean
  email_verified: boolean
  created_at: Timestamp
  updated_at: Timestamp
}

export interface ProductsTable {
  id: Generated<number>
  product_id: string
  name: string
  description: string
  price: number
  owner_id: number | null
  created_at: Timestamp
  updated_at: Timestamp
}

export interface SessionsTable {
  id: string
  user_id: number
  created_at: Timestamp
  last_used_at: Timestamp
  expires_at: Timestamp
  user_agent: string | null
  ip: string | null
  revoked_at: ColumnType<Date | null, Date | null | undefined, Date | null>
  revoked_reason: string | null
}

export interface RefreshTokensTable {
  token_hash: string
  session_id: string
  created_at: Timestamp
  expires_at: Timestamp
  used_at: ColumnType<Date | null, Date | null | undefined, Date | null>
}

export interface Database {
  users: UsersTable
  products: ProductsTable
  sessions: SessionsTable
  refresh_tokens: RefreshTokensTable
}

export type UserRow = Selectable<UsersTable>
export type NewUserRow = Insertable<UsersTable>
export type UserRowUpdate = Updateable<UsersTable>
export type ProductRow = Selectable<ProductsTable>
export type NewProductRow = Insertable<ProductsTable>
export type ProductRowUpdate = Updateable<ProductsTable>
export type SessionRow = Selectable<SessionsTable>
export type NewSessionRow = Insertable<SessionsTable>
export type RefreshTokenRow = Selectable<RefreshTokensTable>
