// ES module entry: the same objects as the CommonJS entry (one McpVaultError class).
import cjs from './express.js'

export const {
  createMcpVaultMiddleware,
  extractToken,
  generateKeypair,
  mint,
  attenuate,
  verify,
  inspect,
  McpVaultError,
  TOKEN_HEADER,
} = cjs
export default cjs
