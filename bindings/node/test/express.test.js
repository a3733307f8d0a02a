'use strict'
const { test, after } = require('node:test')
const assert = require('node:assert/strict')
const express = require('express')
const request = require('supertest')

const { createMcpVaultMiddleware, generateKeypair, mint, McpVaultError } = require('..')
const { Cli } = require('../support/cli.js')

const cli = new Cli()
after(() => cli.cleanup())

function appFor(auth) {
  const app = express()
  app.use(express.json())
  app.post('/mcp', auth('db_query'), (req, res) => res.json(req.mcpvaultFacts))
  app.get('/kv/*path', auth('kv.read', { resource: (req) => `kv:${[].concat(req.params.path).join('/')}` }), (req, res) =>
    res.json(req.mcpvaultFacts),
  )
  return app
}

const defaultApp = appFor(createMcpVaultMiddleware({ publicKeyHex: cli.publicKey }))
const post = (token, app = defaultApp) => request(app).post('/mcp').set('X-MCPVault-Token', token).send({})

test('token in X-MCPVault-Token: 200 with req.mcpvaultFacts', async () => {
  const res = await post(cli.mint())
  assert.equal(res.status, 200)
  assert.equal(res.body.verified, true)
  assert.equal(res.body.subject, 'agent-1')
  assert.deepEqual(res.body.tools, ['db_query'])
})

test('token in the JSON-RPC body params._meta.token', async () => {
  const body = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'db_query', _meta: { token: cli.mint() } } }
  const res = await request(defaultApp).post('/mcp').send(body)
  assert.equal(res.status, 200)
  assert.equal(res.body.verified, true)
})

test('header wins over the body', async () => {
  const body = { params: { _meta: { token: cli.mint({ tools: 'other' }) } } }
  const res = await request(defaultApp).post('/mcp').set('X-MCPVault-Token', cli.mint()).send(body)
  assert.equal(res.status, 200)
})

test('missing token: 401', async () => {
  for (const body of [{}, { params: {} }, { params: { _meta: { token: '' } } }]) {
    const res = await request(defaultApp).post('/mcp').send(body)
    assert.equal(res.status, 401)
    assert.deepEqual(res.body, { error: 'missing_token', reason: 'no token', code: 'no_token' })
    assert.equal(res.headers['www-authenticate'], 'Bearer')
  }
})

test('wrong tool: 403 with the core reason', async () => {
  const res = await post(cli.mint({ tools: 'read_data' }))
  assert.equal(res.status, 403)
  assert.deepEqual(res.body, { error: 'denied', reason: 'tool not granted: db_query (token admits read_data)', code: 'tool_not_granted' })
})

test('attenuated by the CLI: allowed and blocked', async () => {
  const root = cli.mint({ tools: '*' })
  const ok = await post(cli.attenuate(root, '--tools', 'db_query'))
  assert.equal(ok.status, 200)
  assert.equal(ok.body.delegationDepth, 1)
  const blocked = await post(cli.attenuate(root, '--tools', 'read_data'))
  assert.equal(blocked.status, 403)
  assert.equal(blocked.body.code, 'tool_not_granted')
})

test('expired: 403', async () => {
  const token = cli.mint({ ttl: 60 })
  const later = appFor(createMcpVaultMiddleware({ publicKeyHex: cli.publicKey, clock: () => new Date(Date.now() + 600e3) }))
  const res = await post(token, later)
  assert.equal(res.status, 403)
  assert.equal(res.body.reason, 'expired')
})

test('revoked by the CLI: 403, and the list can change live', async () => {
  const token = cli.mint()
  const ids = cli.revoke(token, 'express.txt')
  const auth = createMcpVaultMiddleware({ publicKeyHex: cli.publicKey, revocationList: ids })
  const app = appFor(auth)
  const res = await post(token, app)
  assert.equal(res.status, 403)
  assert.equal(res.body.reason, 'revoked')
  auth.setRevocationList([])
  assert.equal((await post(token, app)).status, 200)
  auth.setRevocationList(ids)
  assert.equal((await post(token, app)).status, 403)
  assert.deepEqual(auth.revocationList, ids)
})

test('bad signature: 403, token not echoed', async () => {
  const forged = mint(generateKeypair().privateKey, { tools: ['db_query'], subject: 'agent-1' })
  const res = await post(forged)
  assert.equal(res.status, 403)
  assert.equal(res.body.reason, 'bad signature')
  assert.ok(!res.text.includes(forged))
})

test('subject option', async () => {
  const app = appFor(createMcpVaultMiddleware({ publicKeyHex: cli.publicKey, subject: 'agent-2' }))
  assert.equal((await post(cli.mint({ subject: 'agent-1' }), app)).body.code, 'wrong_subject')
  assert.equal((await post(cli.mint({ subject: 'agent-2' }), app)).status, 200)
})

test('resource from the request', async () => {
  const token = cli.mint({ tools: 'kv.read', extra: ['--resource', 'kv:app/*'] })
  const ok = await request(defaultApp).get('/kv/app/db').set('X-MCPVault-Token', token)
  assert.equal(ok.status, 200)
  assert.deepEqual(ok.body.resources, ['kv:app/*'])
  const no = await request(defaultApp).get('/kv/other/db').set('X-MCPVault-Token', token)
  assert.equal(no.status, 403)
  assert.equal(no.body.reason, 'resource not granted: kv:other/db (token admits kv:app/*)')
})

test('bad configuration throws at start-up', () => {
  assert.throws(() => createMcpVaultMiddleware({ publicKeyHex: 'nope' }), (e) => e instanceof McpVaultError && e.code === 'invalid_argument')
  assert.throws(() => createMcpVaultMiddleware({ publicKeyHex: cli.publicKey, revocationList: ['xyz'] }), McpVaultError)
  assert.throws(() => createMcpVaultMiddleware({ publicKeyHex: cli.publicKey })(''), McpVaultError)
})
