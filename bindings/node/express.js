'use strict'
// mcpvault-express: Express middleware and token API on the mcpvault Rust core.
//
//   const { createMcpVaultMiddleware } = require('mcpvault-express')
//   const auth = createMcpVaultMiddleware({ publicKeyHex, revocationList })
//   app.post('/mcp', express.json(), auth('db_query'), handler)
//
// Every decision is made by the native addon (the same Rust core as the
// mcpvault-stdio server); this file only moves values between Express and it.

const native = require('./index.js')

const TOKEN_HEADER = 'x-mcpvault-token'
const INVALID_ARGUMENT = 'invalid_argument'

/** A denied token (`denied: true`) or an invalid argument (`code: "invalid_argument"`). */
class McpVaultError extends Error {
  constructor(reason, code) {
    super(reason)
    this.name = 'McpVaultError'
    this.reason = reason
    this.code = code
    this.denied = code !== INVALID_ARGUMENT
  }
}

// Native errors carry the core's code (`expired`, `tool_not_granted`, ...) or
// `invalid_argument`; napi's own argument conversion errors (`StringExpected`,
// ...) are invalid arguments too.
const OUR_CODE = /^[a-z][a-z_]*$/
function convertError(err) {
  if (err instanceof McpVaultError || !(err instanceof Error)) return err
  const code = typeof err.code === 'string' && OUR_CODE.test(err.code) ? err.code : INVALID_ARGUMENT
  return new McpVaultError(err.message, code)
}

function call(fn, ...args) {
  try {
    return fn(...args)
  } catch (err) {
    throw convertError(err)
  }
}

// Options objects are checked for unknown keys: napi ignores them, and a
// misspelt restriction (`tool` for `tools`) must not mint a wider token.
function checked(what, obj, allowed) {
  if (obj === undefined || obj === null) return undefined
  if (typeof obj !== 'object' || Array.isArray(obj)) {
    throw new McpVaultError(`${what} must be an object`, INVALID_ARGUMENT)
  }
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) {
      throw new McpVaultError(
        `unknown ${what} key ${JSON.stringify(key)} (expected one of: ${allowed.join(', ')})`,
        INVALID_ARGUMENT,
      )
    }
  }
  return obj
}

const MINT_KEYS = ['tools', 'ttl', 'issuer', 'subject', 'maxDelegationDepth', 'resources']
const ATTENUATE_KEYS = ['tools', 'ttl', 'resources', 'maxDelegationDepth']
const VERIFY_KEYS = ['requestedTool', 'resource', 'subject', 'revocationList', 'now']

// A single string where a list is expected is one entry (`tools: 'db_query'`).
function listed(obj, keys) {
  if (!obj) return obj
  let out = obj
  for (const k of keys) {
    if (typeof obj[k] === 'string') out = { ...out, [k]: [obj[k]] }
  }
  return out
}

function unixSeconds(now) {
  return now instanceof Date ? now.getTime() / 1000 : now
}

function verifyOptions(options) {
  const o = checked('verify options', options, VERIFY_KEYS)
  if (!o || typeof o.requestedTool !== 'string') {
    throw new McpVaultError('verify options need "requestedTool"', INVALID_ARGUMENT)
  }
  const l = listed(o, ['revocationList'])
  return l.now === undefined ? l : { ...l, now: unixSeconds(l.now) }
}

/** A new Ed25519 root key pair: `{ privateKey, publicKey }` (hex). */
function generateKeypair() {
  return native.generateKeypair()
}

/** Mints a token signed by the root private key (hex). */
function mint(privateKeyHex, config) {
  return call(native.mint, privateKeyHex, listed(checked('mint config', config, MINT_KEYS), ['tools', 'resources']))
}

/**
 * Appends a narrowing block: `attenuate(token, config)` or, checking the
 * signature chain first, `attenuate(token, publicKeyHex, config)`.
 */
function attenuate(token, publicKeyOrConfig, config) {
  if (config === undefined && publicKeyOrConfig !== null && typeof publicKeyOrConfig === 'object') {
    config = publicKeyOrConfig
    publicKeyOrConfig = undefined
  }
  return call(
    native.attenuate,
    token,
    publicKeyOrConfig ?? undefined,
    listed(checked('attenuate config', config, ATTENUATE_KEYS), ['tools', 'resources']),
  )
}

/**
 * Authorizes one request: `{ requestedTool, resource?, subject?, revocationList?, now? }`.
 * Returns the token's facts or throws `McpVaultError` with the denial reason.
 */
function verify(token, publicKeyHex, options) {
  return call(native.verify, token, publicKeyHex, verifyOptions(options))
}

/** Reads a token WITHOUT checking its signature (never use it to decide). */
function inspect(token) {
  return call(native.inspect, token)
}

/** The request's token: `X-MCPVault-Token`, then `req.body.params._meta.token`. */
function extractToken(req) {
  const header = req.headers?.[TOKEN_HEADER]
  if (typeof header === 'string' && header.trim()) return header.trim()
  const token = req.body?.params?._meta?.token
  if (typeof token === 'string' && token.trim()) return token.trim()
  return null
}

function send(res, status, error, reason, code) {
  if (status === 401) res.set('WWW-Authenticate', 'Bearer')
  res.status(status).json({ error, reason, code })
}

/**
 * Express middleware factory. `publicKeyHex`: root public key (hex; several
 * comma-separated during a rotation); `revocationList`: revoked ids (hex);
 * `subject`: accept only tokens minted for this subject; `clock`: a function
 * returning the current time (Date or unix seconds), for tests. A bad key or id
 * throws here, at start-up.
 *
 * `auth(toolName, { resource })` returns a middleware that answers 401 without a
 * token, 403 `{ error: "denied", reason, code }` when the core denies it, and
 * otherwise sets `req.mcpvaultFacts` (`{ verified: true, tools, subject, ... }`).
 * `resource` is `"KIND:VALUE"` or a function of the request returning one.
 * Put `express.json()` before it to read tokens from JSON-RPC bodies.
 */
function createMcpVaultMiddleware({ publicKeyHex, revocationList, subject, clock } = {}) {
  let guard = call((k, r) => new native.Guard(k, r), publicKeyHex, revocationList ?? [])
  let revoked = [...(revocationList ?? [])]

  function auth(toolName, { resource } = {}) {
    if (typeof toolName !== 'string' || !toolName) {
      throw new McpVaultError('auth(toolName) needs a tool name', INVALID_ARGUMENT)
    }
    return function mcpvaultAuth(req, res, next) {
      const token = extractToken(req)
      if (token === null) return send(res, 401, 'missing_token', 'no token', 'no_token')
      const options = { requestedTool: toolName }
      const r = typeof resource === 'function' ? resource(req) : resource
      if (r !== undefined && r !== null) options.resource = r
      if (subject !== undefined) options.subject = subject
      if (clock) options.now = unixSeconds(clock())
      let facts
      try {
        facts = guard.verify(token, options)
      } catch (raw) {
        const err = convertError(raw)
        if (!(err instanceof McpVaultError)) return next(err)
        // A server-side mistake (e.g. a bad resource string): fail closed.
        if (!err.denied) return send(res, 500, 'server_error', err.reason, err.code)
        if (err.code === 'no_token') return send(res, 401, 'missing_token', err.reason, err.code)
        return send(res, 403, 'denied', err.reason, err.code)
      }
      req.mcpvaultFacts = { verified: true, ...facts }
      next()
    }
  }

  /** Replaces the revoked ids; takes effect on the next request. */
  auth.setRevocationList = (ids) => {
    const next = [...ids]
    guard = call((k, r) => new native.Guard(k, r), publicKeyHex, next)
    revoked = next
  }
  Object.defineProperty(auth, 'revocationList', { get: () => [...revoked], enumerable: true })
  return auth
}

module.exports = {
  createMcpVaultMiddleware,
  extractToken,
  generateKeypair,
  mint,
  attenuate,
  verify,
  inspect,
  McpVaultError,
  TOKEN_HEADER,
}
