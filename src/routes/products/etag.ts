import { productVersionTag, type VersionCondition } from '../../services/products.js'

/** A strong ETag from the product's version: it changes with every change of the product. */
export const productEtag = productVersionTag

/**
 * The versions an If-Match header allows a change of (RFC 9110 §13.1.1: strong comparison, so
 * weak tags never match; "*" matches any existing product); undefined without the header.
 */
export function ifMatchCondition(header: string | undefined): VersionCondition | undefined {
  if (header === undefined) return undefined
  return {
    allows(version) {
      if (header.trim() === '*') return true
      const current = productEtag(version)
      return header.split(',').some((tag) => tag.trim() === current)
    },
  }
}

/** Whether If-None-Match names the current ETag: weak comparison (RFC 9110 §13.1.2); "*" matches any. */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (!header) return false
  return header.trim() === '*' || header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag)
}
