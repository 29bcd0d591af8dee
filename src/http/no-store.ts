import type { FastifyReply } from 'fastify'

/**
 * For answers that carry credentials (tokens, secrets, recovery codes, WebAuthn challenges): no
 * cache, the browser's or a proxy's, may keep them (RFC 6749 § 5.1 asks it of token responses).
 */
export const noStore = (reply: FastifyReply) =>
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
