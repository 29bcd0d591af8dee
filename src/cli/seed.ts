import { randomBytes } from 'node:crypto'
import type { Kysely } from 'kysely'
import { hashPassword } from '../auth/passwords.js'
import type { Database } from '../db/database.js'
import { insertReturningId } from '../db/portable.js'
import type { Engine } from '../db/target.js'
import { createProgress } from './progress.js'
import { productSearchText } from '../repositories/products.js'

/**
 * Rows per INSERT: 2 000 rows × 9 columns stays under every engine's limit on bound parameters
 * (SQLite's 32 766 is the lowest) while making each statement large enough to be fast.
 */
const ROWS_PER_INSERT = 2000
const ROWS_PER_TRANSACTION = 50_000

const ADJECTIVES = [
  'Compact',
  'Wireless',
  'Ergonomic',
  'Vintage',
  'Solar',
  'Modular',
  'Silent',
  'Rugged',
  'Smart',
  'Foldable',
]
const NOUNS = [
  'keyboard',
  'lamp',
  'backpack',
  'kettle',
  'headphones',
  'chair',
  'monitor',
  'speaker',
  'tent',
  'bicycle',
]
const MATERIALS = ['aluminium', 'oak', 'recycled plastic', 'steel', 'bamboo', 'leather', 'glass', 'cotton']

/** A small deterministic generator (mulberry32), so that a seed with the same number gives the same data. */
function generator(seed: number) {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface SeedOptions {
  products: number
  users: number
  password: string
  seed?: number
  /** Where progress goes; the tests pass a stream of their own. */
  progressStream?: NodeJS.WriteStream
}

export interface SeedResult {
  userEmails: string[]
  products: number
  tag: string
}

/**
 * Demo and benchmark data: `users` users sharing one password, and `products` products spread
 * over the past year, inserted in large batches inside transactions. Every run uses a fresh tag,
 * so seeding twice adds data instead of colliding with the first run's names and SKUs.
 */
export async function seedDatabase(
  db: Kysely<Database>,
  engine: Engine,
  options: SeedOptions,
): Promise<SeedResult> {
  const run: SeedRun = {
    tag: randomBytes(3).toString('hex'),
    random: generator(options.seed ?? Date.now()),
    now: Date.now(),
  }
  const passwordHash = await hashPassword(options.password)
  const users = await seedUsers(db, engine, run, options.users, passwordHash)
  await seedProducts(db, run, options, users.ids)
  return { userEmails: users.emails, products: options.products, tag: run.tag }
}

/** What every row of one run shares: its tag, its random numbers and its clock. */
interface SeedRun {
  tag: string
  random: () => number
  now: number
}

async function seedUsers(
  db: Kysely<Database>,
  engine: Engine,
  run: SeedRun,
  count: number,
  passwordHash: string,
) {
  const ids: number[] = []
  const emails: string[] = []
  for (let i = 1; i <= count; i++) {
    const name = `seed_${run.tag}_${i}`
    const email = `${name}@example.com`
    const at = new Date(run.now)
    ids.push(
      await insertReturningId(
        engine,
        db.insertInto('users').values({
          name,
          name_key: name,
          email,
          password_hash: passwordHash,
          role: 'user',
          is_active: true,
          email_verified: true,
          created_at: at,
          updated_at: at,
        }),
      ),
    )
    emails.push(email)
  }
  return { ids, emails }
}

async function seedProducts(db: Kysely<Database>, run: SeedRun, options: SeedOptions, userIds: number[]) {
  const progress = createProgress('seeding products', options.products, options.progressStream)
  const makeRows = productRows(run, options.products, userIds)
  // Several inserts per transaction: one commit (and WAL sync) per 50 000 rows, not per 2 000.
  for (let start = 0; start < options.products; start += ROWS_PER_TRANSACTION) {
    const end = Math.min(start + ROWS_PER_TRANSACTION, options.products)
    await db.transaction().execute(async (trx) => {
      for (let from = start; from < end; from += ROWS_PER_INSERT) {
        const count = Math.min(ROWS_PER_INSERT, end - from)
        await trx.insertInto('products').values(makeRows(from, count)).execute()
        progress.advance(from + count)
      }
    })
  }
  progress.finish()
}

/** Makes `count` product rows from the `start`th of `total`, owned by random seeded users. */
function productRows({ tag, random, now }: SeedRun, total: number, userIds: number[]) {
  const yearMs = 365 * 24 * 60 * 60 * 1000
  return (start: number, count: number) =>
    Array.from({ length: count }, (_, offset) => {
      const n = start + offset + 1
      const name = `${ADJECTIVES[Math.floor(random() * ADJECTIVES.length)]} ${NOUNS[Math.floor(random() * NOUNS.length)]}`
      const description = `Made of ${MATERIALS[Math.floor(random() * MATERIALS.length)]}. Item ${n} of seed ${tag}.`
      const productId = `SEED-${tag}-${n}`
      // Older first, with jitter, so that created_at has realistic ties and gaps.
      const createdAt = new Date(
        now - yearMs + Math.floor((n / total) * yearMs) - Math.floor(random() * 60_000),
      )
      return {
        product_id: productId,
        name,
        description,
        price: Math.floor(random() * 100_000),
        owner_id: userIds.length ? userIds[Math.floor(random() * userIds.length)]! : null,
        version: 1,
        search_text: productSearchText({ product_id: productId, name, description }),
        created_at: createdAt,
        updated_at: createdAt,
      }
    })
}
