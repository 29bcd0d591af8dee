import { Type } from 'typebox'

export const ValidationIssue = Type.Object({
  in: Type.String({
    description: 'Where the bad value is: body, query, path or header.',
    examples: ['body'],
  }),
  field: Type.String({
    description: 'The field, as a dotted path ("" for the whole part).',
    examples: ['email'],
  }),
  message: Type.String({ examples: ['must match format "email"'] }),
})

/** RFC 9457 problem details: the body of every error response. */
export const Problem = Type.Object(
  {
    type: Type.String({ examples: ['about:blank'] }),
    title: Type.String({ examples: ['Unprocessable Content'] }),
    status: Type.Integer({ examples: [422] }),
    detail: Type.String({ examples: ['The request is not valid: see errors.'] }),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(ValidationIssue)),
  },
  { $id: 'Problem', description: 'An error, as application/problem+json (RFC 9457).' },
)

const ref = Type.Ref('Problem')

/** Response entries for the error statuses a route can return, all with the Problem body. */
export function problemResponses<S extends number>(...statuses: S[]): Record<S, typeof ref> {
  return Object.fromEntries(statuses.map((status) => [status, ref])) as Record<S, typeof ref>
}
