'use strict'
// The Rust CLI (`mcpvault`) with one key file, so the addon is tested against
// tokens it did not make itself.
const { execFileSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const REPO = path.resolve(__dirname, '..', '..', '..')

function cliPath() {
  if (process.env.MCPVAULT_CLI) return process.env.MCPVAULT_CLI
  // A relative CARGO_TARGET_DIR is relative to the repository, where cargo ran.
  const target = path.resolve(REPO, process.env.CARGO_TARGET_DIR || 'target')
  return path.join(target, 'debug', 'mcpvault')
}

class Cli {
  constructor() {
    this.exe = cliPath()
    if (!fs.existsSync(this.exe)) {
      throw new Error(`${this.exe} not found: run \`cargo build --bin mcpvault\` (bindings/test.sh does)`)
    }
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcpvault-node-'))
    this.key = path.join(this.dir, 'root.json')
    this.publicKey = this.run('keygen', '--output', this.key)
    this.privateKey = JSON.parse(fs.readFileSync(this.key, 'utf8')).private_key
  }

  run(...args) {
    try {
      return execFileSync(this.exe, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
    } catch (err) {
      throw new Error(`mcpvault ${args[0]} failed: ${String(err.stderr).trim()}`)
    }
  }

  mint({ tools = 'db_query', ttl = 3600, subject = 'agent-1', extra = [] } = {}) {
    return this.run(
      'mint', '--key', this.key, '--tools', tools, '--ttl', String(ttl),
      '--subject', subject, '--issuer', 'test-issuer', ...extra,
    )
  }

  attenuate(token, ...extra) {
    return this.run('attenuate', '--token', token, '--pubkey', this.publicKey, ...extra)
  }

  revoke(token, name = 'revoked.txt') {
    const list = path.join(this.dir, name)
    this.run('revoke', '--token', token, '--list', list)
    return fs.readFileSync(list, 'utf8').split('\n').filter((l) => l.trim())
  }

  cleanup() {
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

module.exports = { Cli }
