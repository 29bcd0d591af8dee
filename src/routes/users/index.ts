import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Config } from '../../config.js'
import { authenticated } from '../../http/authenticated.js'
import { registerSignUp } from './sign-up.js'
import {
  registerDeleteUser,
  registerGetUser,
  registerListUsers,
  registerMe,
  registerUpdateUser,
} from './users.js'

/** Users: signing up is public; every other route needs an access token. */
const usersRoutes: FastifyPluginAsyncTypebox<{ config: Config }> = async (app) => {
  registerSignUp(app)
  await app.register(
    authenticated(async (api) => {
      registerListUsers(api)
      registerMe(api)
      registerGetUser(api)
      registerUpdateUser(api)
      registerDeleteUser(api)
    }),
  )
}

export default usersRoutes
