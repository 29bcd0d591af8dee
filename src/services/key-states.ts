import type { SigningKeyRow } from '../repositories/signing-keys.js'

/**
 * The life of a stored signing key, read from its dates alone, so that every instance agrees on
 * it without a scheduler (services/signing-keys.ts says why each date is what it is):
 *
 *   next      published (JWKS) and verifying, not signing yet: from created_at to activates_at;
 *   current   the newest key whose activates_at has come: signs every new token;
 *   retiring  replaced by a newer current key, still verifying until retires_at;
 *   retired   neither signs nor verifies nor is published; its private key is erased.
 */
export type KeyState = 'next' | 'current' | 'retiring' | 'retired'

/** A key as `keys list` shows it. */
export interface SigningKeyView {
  kid: string
  generation: number
  algorithm: string
  state: KeyState
  created_at: Date
  activates_at: Date
  retires_at: Date | null
}

type Dated = Pick<SigningKeyRow, 'kid' | 'generation' | 'activates_at' | 'retires_at'>

export const isRetired = (row: Dated, now: number) =>
  row.retires_at !== null && row.retires_at.getTime() <= now

/** Published before it signs: its activation has not come yet. */
export const isWaiting = (row: Dated, now: number) => row.activates_at.getTime() > now

/** The key that signs at `now`: the newest generation whose activation has come, not retired. */
export function currentKey<T extends { row: Dated }>(keys: readonly T[], now: number): T | undefined {
  let newest: T | undefined
  for (const key of keys)
    if (!isWaiting(key.row, now) && !isRetired(key.row, now))
      // Stryker disable next-line EqualityOperator: generations are unique (a unique index), so `>=` never sees a tie.
      if (!newest || key.row.generation > newest.row.generation) newest = key
  return newest
}

export function stateOf(row: Dated, rows: readonly Dated[], now: number): KeyState {
  if (isRetired(row, now)) return 'retired'
  if (isWaiting(row, now)) return 'next'
  // Stryker disable next-line OptionalChaining: `row` is active and among `rows`, so a current key exists here.
  return currentKey(
    rows.map((other) => ({ row: other })),
    now,
  )?.row.kid === row.kid
    ? 'current'
    : 'retiring'
}

export const viewOf = (row: SigningKeyRow, rows: readonly SigningKeyRow[], now: number): SigningKeyView => ({
  kid: row.kid,
  generation: row.generation,
  algorithm: row.algorithm,
  state: stateOf(row, rows, now),
  created_at: row.created_at,
  activates_at: row.activates_at,
  retires_at: row.retires_at,
})

/** The generation the next key takes: one more than any key ever made. */
export const nextGeneration = (rows: readonly Dated[]) =>
  rows.reduce((max, row) => Math.max(max, row.generation), 0) + 1

/**
 * JWT_KEY_ROTATION_DAYS (`periodMs` > 0): a rotation is due when the current key has signed for
 * that long and no next key waits.
 */
export function rotationDue(rows: readonly Dated[], now: number, periodMs: number): boolean {
  if (periodMs <= 0 || rows.some((row) => isWaiting(row, now))) return false
  const current = currentKey(
    rows.map((row) => ({ row })),
    now,
  )?.row
  return current !== undefined && current.activates_at.getTime() + periodMs <= now
}
