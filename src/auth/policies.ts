import type { ProductRecord } from '../repositories/products.js'
import type { UserRecord } from '../repositories/users.js'

/** A user may see and change their own account; an admin any account. */
export function canManageUser(actor: UserRecord, userId: number): boolean {
  return actor.role === 'admin' || actor.id === userId
}

/** Only the owner of a product, or an admin, may change or delete it. */
export function canModifyProduct(actor: UserRecord, product: ProductRecord): boolean {
  return actor.role === 'admin' || (product.owner_id !== null && product.owner_id === actor.id)
}
