'use strict'
// Verify latency from Node: the same token and request as the Rust criterion
// bench (`cargo bench --bench verify`, cached/depth1 and first_sight/depth1).
//
//   node verify.js [iterations]
const path = require('node:path')
const vault = require(path.join(__dirname, '..', 'node'))
const native = require(path.join(__dirname, '..', 'node', 'index.js'))

const N = Number(process.argv[2] || 10000)
const { privateKey, publicKey } = vault.generateKeypair()

function chain() {
  const root = vault.mint(privateKey, {
    tools: ['kv.*', 'transit.encrypt'], subject: 'agentA', maxDelegationDepth: 10, resources: ['kv:app/*'],
  })
  return vault.attenuate(root, { tools: ['kv.read', 'kv.list'], ttl: 1800, resources: ['kv:app/*'], maxDelegationDepth: 8 })
}

const OPTS = { requestedTool: 'kv.read', resource: 'kv:app/x/x/x/x/x/secret', subject: 'agentA' }

function timed(label, fn, n) {
  for (let i = 0; i < Math.min(n, 1000); i++) fn()
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) fn()
  const per = Number(process.hrtime.bigint() - start) / n / 1000
  console.log(`node   ${label.padEnd(34)} ${per.toFixed(2).padStart(8)} us/call  (${n} calls)`)
}

const token = chain()
vault.verify(token, publicKey, OPTS)
const guard = new native.Guard(publicKey, [])
timed('verify() cached/depth1', () => vault.verify(token, publicKey, OPTS), N)
timed('Guard.verify (middleware) cached', () => guard.verify(token, OPTS), N)

const fresh = Array.from({ length: 300 }, chain)
const start = process.hrtime.bigint()
for (const t of fresh) vault.verify(t, publicKey, OPTS)
const per = Number(process.hrtime.bigint() - start) / fresh.length / 1000
console.log(`node   ${'first_sight/depth1'.padEnd(34)} ${per.toFixed(2).padStart(8)} us/call  (${fresh.length} tokens)`)
