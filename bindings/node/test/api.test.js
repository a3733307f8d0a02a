'use strict'
const { test, after } = require('node:test')
const assert = require('node:assert/strict')

const vault = require('..')
const { McpVaultError } = vault
const { Cli } = require('../support/cli.js')

const cli = new Cli()
after(() => cli.cleanup())
const HOUR = 3600
const now = () => Date.now() / 1000

function denied(fn) {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof McpVaultError, `not a McpVaultError: ${err}`)
    return err
  }
  assert.fail('no error thrown')
}

test('CLI-minted token verifies with its facts', () => {
  const token = cli.mint({ tools: 'db_query,kv.*' })
  const facts = vault.verify(token, cli.publicKey, { requestedTool: 'db_query' })
  assert.deepEqual(facts.tools, ['db_query', 'kv.*'])
  assert.equal(facts.issuer, 'test-issuer')
  assert.equal(facts.subject, 'agent-1')
  assert.equal(facts.delegationDepth, 0)
  assert.equal(facts.toolWildcard, false)
  assert.match(facts.expiresAt, /Z$/)
  assert.deepEqual(facts.revocationIds, vault.inspect(token).revocationIds)
  vault.verify(token, cli.publicKey, { requestedTool: 'kv.read' })
})

test('wrong tool: the core reason and code', () => {
  const err = denied(() => vault.verify(cli.mint({ tools: 'read_data' }), cli.publicKey, { requestedTool: 'db_query' }))
  assert.equal(err.reason, 'tool not granted: db_query (token admits read_data)')
  assert.equal(err.message, err.reason)
  assert.equal(err.code, 'tool_not_granted')
  assert.equal(err.denied, true)
})

test('CLI-attenuated token narrows; both attenuate forms', () => {
  const root = cli.mint({ tools: '*' })
  const narrowed = cli.attenuate(root, '--tools', 'db_query')
  assert.equal(vault.verify(narrowed, cli.publicKey, { requestedTool: 'db_query' }).delegationDepth, 1)
  assert.equal(denied(() => vault.verify(narrowed, cli.publicKey, { requestedTool: 'file_read' })).code, 'tool_not_granted')
  for (const t of [
    vault.attenuate(root, cli.publicKey, { tools: ['db_query'], ttl: 600 }),
    vault.attenuate(root, { tools: 'db_query' }),
  ]) {
    vault.verify(t, cli.publicKey, { requestedTool: 'db_query' })
    assert.equal(denied(() => vault.verify(t, cli.publicKey, { requestedTool: 'x' })).code, 'tool_not_granted')
  }
  const other = vault.generateKeypair()
  assert.equal(denied(() => vault.attenuate(root, other.publicKey, { tools: ['x'] })).code, 'bad_signature')
})

test('expired: now option (seconds or Date)', () => {
  const token = cli.mint({ ttl: 60 })
  vault.verify(token, cli.publicKey, { requestedTool: 'db_query', now: now() + 30 })
  const later = denied(() => vault.verify(token, cli.publicKey, { requestedTool: 'db_query', now: now() + HOUR }))
  assert.equal(later.code, 'expired')
  const asDate = new Date(Date.now() + HOUR * 1000)
  assert.equal(denied(() => vault.verify(token, cli.publicKey, { requestedTool: 'db_query', now: asDate })).reason, 'expired')
})

test('revoked by the CLI: child and root', () => {
  const root = cli.mint()
  const child = cli.attenuate(root, '--tools', 'db_query')
  const ids = cli.revoke(child, 'child.txt')
  assert.deepEqual(ids, [vault.inspect(child).revocationIds.at(-1)])
  const opts = { requestedTool: 'db_query', revocationList: ids }
  assert.equal(denied(() => vault.verify(child, cli.publicKey, opts)).code, 'revoked')
  vault.verify(root, cli.publicKey, opts)
  const rootIds = cli.revoke(root, 'root.txt')
  for (const t of [root, child]) {
    const err = denied(() => vault.verify(t, cli.publicKey, { requestedTool: 'db_query', revocationList: rootIds }))
    assert.equal(err.reason, 'revoked')
  }
})

test('bad signature, key rotation, malformed', () => {
  const token = cli.mint()
  const other = vault.generateKeypair()
  const err = denied(() => vault.verify(token, other.publicKey, { requestedTool: 'db_query' }))
  assert.equal(err.code, 'bad_signature')
  assert.equal(err.reason, 'bad signature')
  vault.verify(token, `${other.publicKey},${cli.publicKey}`, { requestedTool: 'db_query' })
  const garbage = Buffer.from([0xde, 0xad, 0xbe, 0xef]).toString('base64')
  assert.equal(denied(() => vault.verify(garbage, cli.publicKey, { requestedTool: 'x' })).code, 'malformed')
})

test('resources, subject, delegation cap', () => {
  const token = cli.mint({ tools: 'kv.*', extra: ['--resource', 'kv:app/*'] })
  vault.verify(token, cli.publicKey, { requestedTool: 'kv.read', resource: 'kv:app/db' })
  const err = denied(() => vault.verify(token, cli.publicKey, { requestedTool: 'kv.read', resource: 'kv:other' }))
  assert.equal(err.reason, 'resource not granted: kv:other (token admits kv:app/*)')
  assert.equal(denied(() => vault.verify(token, cli.publicKey, { requestedTool: 'kv.read', subject: 'b' })).code, 'wrong_subject')
  const capped = cli.mint({ extra: ['--max-delegation-depth', '0'] })
  const child = vault.attenuate(capped, { tools: ['db_query'] })
  assert.equal(denied(() => vault.verify(child, cli.publicKey, { requestedTool: 'db_query' })).code, 'delegation_too_deep')
})

test('non-ASCII input: a value or McpVaultError, never a panic', () => {
  // Regression: 'kv:é' made the core slice a string inside a character (a Rust panic).
  const token = vault.mint(cli.privateKey, { ttl: 600, subject: 'agént', resources: ['kv:é', 'transit:ключ*'] })
  const facts = vault.verify(token, cli.publicKey, { requestedTool: 'kv.read', resource: 'kv:é', subject: 'agént' })
  assert.deepEqual(facts.resources, ['kv:é', 'transit:ключ*'])
  vault.verify(token, cli.publicKey, { requestedTool: 'x', resource: 'transit:ключ-1' })
  const err = denied(() => vault.verify(token, cli.publicKey, { requestedTool: 'x', resource: 'kv:éé' }))
  assert.equal(err.reason, 'resource not granted: kv:éé (token admits kv:é)')
  const child = vault.attenuate(token, { resources: ['kv:é*'], tools: ['kv.*'] })
  vault.verify(child, cli.publicKey, { requestedTool: 'kv.read', resource: 'kv:é' })
  for (const bad of ['kv:é*é', 'kv:*é', 'é:x', 'é']) {
    for (const call of [() => vault.mint(cli.privateKey, { resources: [bad] }), () => vault.attenuate(token, { resources: [bad] })]) {
      const e = denied(call)
      assert.equal(e.code, 'invalid_argument')
      assert.ok(e.reason.includes('invalid resource'), e.reason)
    }
  }
  assert.ok(denied(() => vault.mint(cli.privateKey, { tools: ['é'] })).reason.includes('invalid tool name'))
  assert.ok(denied(() => vault.verify(token, cli.publicKey, { requestedTool: 'x', resource: 'é:x' })).reason.includes('invalid resource'))
})

test('addon-minted token verifies in the CLI', () => {
  const token = vault.mint(cli.privateKey, { tools: ['db_query'], ttl: 600, subject: 'agent-9', resources: ['kv:app/*'] })
  const out = JSON.parse(cli.run('verify', '--token', token, '--pubkey', cli.publicKey, '--tool', 'db_query', '--resource', 'kv:app/x', '--subject', 'agent-9'))
  assert.deepEqual(out.resources, ['kv:app/*'])
})

test('inspect', () => {
  const token = cli.mint()
  const info = vault.inspect(token)
  assert.equal(info.blockCount, 1)
  assert.ok(info.facts.some((f) => f.includes('db_query')))
  const child = vault.attenuate(token, { ttl: 60 })
  const info2 = vault.inspect(child)
  assert.equal(info2.blockCount, 2)
  assert.equal(info2.blocks.length, 2)
  assert.equal(info2.revocationIds[0], info.revocationIds[0])
})

test('invalid arguments are McpVaultError invalid_argument', () => {
  const token = cli.mint()
  const cases = [
    [() => vault.mint(cli.privateKey, { tool: ['x'] }), 'unknown mint config key "tool"'],
    [() => vault.mint(cli.privateKey, { tools: [] }), 'empty tool list'],
    [() => vault.mint(cli.privateKey, { ttl: -1 }), 'ttl must be a whole number'],
    [() => vault.mint(cli.privateKey, { ttl: 1.5 }), 'ttl must be a whole number'],
    [() => vault.mint(cli.privateKey, { resources: ['vault:x'] }), 'invalid resource'],
    [() => vault.mint('zz', {}), 'invalid key'],
    [() => vault.mint(42, {}), ''],
    [() => vault.verify(token, cli.publicKey, {}), 'requestedTool'],
    [() => vault.verify(token, cli.publicKey, { requestedTool: 'x', requested_tool: 'x' }), 'unknown verify options key'],
    [() => vault.verify(token, cli.publicKey, { requestedTool: 'x', resource: 'nope' }), 'invalid resource'],
    [() => vault.verify(token, cli.publicKey, { requestedTool: 'x', revocationList: ['zz'] }), 'not a hex id'],
    [() => vault.verify(token, 'abcd', { requestedTool: 'x' }), 'invalid key'],
  ]
  for (const [fn, needle] of cases) {
    const err = denied(fn)
    assert.equal(err.code, 'invalid_argument', err.message)
    assert.equal(err.denied, false)
    assert.ok(err.reason.includes(needle), `${err.reason} lacks ${needle}`)
  }
})

test('ES module entry exports the same objects', async () => {
  const esm = await import('mcpvault-express')
  assert.equal(esm.McpVaultError, McpVaultError)
  assert.equal(esm.createMcpVaultMiddleware, vault.createMcpVaultMiddleware)
})
