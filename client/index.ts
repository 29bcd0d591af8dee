/**
 * A typed client for this API: openapi-fetch over the types generated from the server's own
 * OpenAPI document (client/schema.d.ts, `npm run client:generate`). Paths, parameters, bodies and
 * responses are all checked by TypeScript.
 *
 *   const api = createApiClient('http://127.0.0.1:8000')
 *   const { data } = await api.POST('/login', { body: { username, password }, ...formEncoded })
 *   api.use(bearerToken(() => data?.access_token))
 *   const { data: me } = await api.GET('/current-user')
 */
import createClient, { type Client, type ClientOptions, type Middleware } from 'openapi-fetch'
import type { components, paths } from './schema.js'

export type { components, paths }

export type ApiClient = Client<paths>

/** The body of every error response (application/problem+json, RFC 9457). */
export type Problem = components['schemas']['Problem']

export function createApiClient(baseUrl: string, options: Omit<ClientOptions, 'baseUrl'> = {}): ApiClient {
  return createClient<paths>({ ...options, baseUrl })
}

/**
 * Request options that send the body form-encoded, as OAuth2 clients send the password grant
 * (`POST /login`); without them the body goes as JSON, which /login accepts too.
 */
export const formEncoded = {
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  bodySerializer: (body: Record<string, string | undefined>) =>
    new URLSearchParams(
      Object.entries(body).filter((entry): entry is [string, string] => entry[1] !== undefined),
    ).toString(),
}

/**
 * Sends `Authorization: Bearer <token>` with every request that has no Authorization header of its
 * own. The token is asked for at each request, so a refreshed one is used as soon as it is stored;
 * no token, no header.
 */
export function bearerToken(getToken: () => string | undefined | Promise<string | undefined>): Middleware {
  return {
    async onRequest({ request }) {
      const token = await getToken()
      if (token !== undefined && !request.headers.has('authorization'))
        request.headers.set('authorization', `Bearer ${token}`)
      return request
    },
  }
}

/** An answer of the API that is an error: its status and its problem+json body. */
export class ApiError extends Error {
  override name = 'ApiError'
  constructor(
    readonly status: number,
    readonly problem: Problem | undefined,
  ) {
    super(problem?.detail ?? `The API answered ${status}`)
  }
}

/**
 * The data of a call, or an ApiError thrown with its status and problem: for code that would
 * rather catch than check `error` after each call (a wrong password then cannot pass unnoticed).
 *
 *   const tokens = await orThrow(api.POST('/login', { body: { username, password }, ...formEncoded }))
 */
export async function orThrow<T>(
  call: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  const { data, error, response } = await call
  if (error !== undefined || !response.ok) throw new ApiError(response.status, error as Problem | undefined)
  return data as T
}
