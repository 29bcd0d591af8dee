import type { ProductRecord } from '../repositories/products.js'
import type { Role } from '../auth/tokens.js'

/** Who acts: the id and role an access token vouches for. */
export interface ActorIdentity {
  id: number
  role: Role
}

/** A user may see and change their own account; an admin any account. */
export function canManageUser(actor: ActorIdentity, userId: number): boolean {
  return actor.role === 'admin' || actor.id === userId
}

/** Only the owner of a product, or an admin, may change or delete it. */
export function canModifyProduct(actor: ActorIdentity, product: ProductRecord): boolean {
  // A product whose owner was deleted (owner_id null) is no user's: null never equals an id.
  return actor.role === 'admin' || product.owner_id === actor.id
}
