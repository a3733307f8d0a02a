// Types of the mcpvault-express package (the native addon's own types are in index.d.ts).
import type { AttenuateConfig, Facts, InspectInfo, KeyPair, MintConfig } from './index'

export type { AttenuateConfig, Facts, InspectInfo, KeyPair, MintConfig }

export interface VerifyOptions {
  requestedTool: string
  /** `KIND:VALUE`, e.g. `kv:app/db`. */
  resource?: string
  /** Require the token's subject to be this. */
  subject?: string
  /** Revoked ids (hex). */
  revocationList?: string[]
  /** Unix seconds (or a Date) instead of the clock; for tests. */
  now?: number | Date
}

/** A denied token (`denied: true`) or an invalid argument (`code: "invalid_argument"`). */
export declare class McpVaultError extends Error {
  readonly reason: string
  /** `expired`, `revoked`, `bad_signature`, `tool_not_granted`, ... or `invalid_argument`. */
  readonly code: string
  readonly denied: boolean
  constructor(reason: string, code: string)
}

export declare const TOKEN_HEADER: 'x-mcpvault-token'

export declare function generateKeypair(): KeyPair
export declare function mint(privateKeyHex: string, config?: MintConfig | null): string
export declare function attenuate(token: string, config?: AttenuateConfig | null): string
export declare function attenuate(
  token: string,
  publicKeyHex: string | null | undefined,
  config?: AttenuateConfig | null,
): string
export declare function verify(token: string, publicKeyHex: string, options: VerifyOptions): Facts
export declare function inspect(token: string): InspectInfo

/** Minimal request/response shapes, so the types need no @types/express. */
export interface RequestLike {
  headers: Record<string, string | string[] | undefined>
  body?: any
  mcpvaultFacts?: VerifiedFacts
}
export interface ResponseLike {
  status(code: number): ResponseLike
  set(field: string, value: string): ResponseLike
  json(body: unknown): unknown
}
export type NextFunction = (err?: unknown) => void

export interface VerifiedFacts extends Facts {
  verified: true
}

export declare function extractToken(req: RequestLike): string | null

export interface McpVaultMiddlewareOptions {
  /** Root public key (hex); several comma-separated during a rotation. */
  publicKeyHex: string
  /** Revoked ids (hex), as `mcpvault revoke` writes them. */
  revocationList?: string[]
  /** Accept only tokens minted for this subject. */
  subject?: string
  /** The current time (Date or unix seconds) instead of the clock; for tests. */
  clock?: () => Date | number
}

export interface AuthOptions {
  /** `KIND:VALUE`, or a function of the request returning one. */
  resource?: string | ((req: any) => string | null | undefined)
}

export interface McpVaultAuth {
  (toolName: string, options?: AuthOptions): (req: any, res: any, next: NextFunction) => void
  /** Replaces the revoked ids; takes effect on the next request. */
  setRevocationList(ids: string[]): void
  readonly revocationList: string[]
}

export declare function createMcpVaultMiddleware(options: McpVaultMiddlewareOptions): McpVaultAuth
