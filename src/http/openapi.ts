/** The OAuth2 password flow's security scheme, as the OpenAPI document names it. */
export const OAUTH2_SCHEME = 'OAuth2PasswordBearer'

/** The `security` requirement of a route that needs an access token. */
export const bearerSecurity = [{ [OAUTH2_SCHEME]: [] }]
