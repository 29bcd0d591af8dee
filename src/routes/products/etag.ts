import { staleVersion, versionRequired, type DomainError } from '../../services/errors.js'

/** A strong ETag from the product's version: it changes with every change of the product. */
export function productEtag(version: number): string {
  return `"${version}"`
}

/**
 * Whether an If-Match header allows a change of the current version (RFC 9110 §13.1.1: strong
 * comparison, so weak tags never match; "*" matches any existing product).
 */
export function ifMatchAllows(header: string, version: number): boolean {
  if (header.trim() === '*') return true
  const current = productEtag(version)
  return header.split(',').some((tag) => tag.trim() === current)
}

export function preconditionFailed(version: number): DomainError {
  return staleVersion(
    'The product has changed since you read it: GET it again and retry with its new ETag.',
    productEtag(version),
  )
}

export function preconditionRequired(): DomainError {
  return versionRequired(
    'Send If-Match with the ETag from GET /product/{id}: changes must name the version they change.',
  )
}
