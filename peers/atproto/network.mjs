// Starts the reference PLC directory and PDS from @atproto/dev-env on loopback, for skystream's
// end-to-end tests, and drives them on request.
//
// Protocol: prints one JSON line {"ready": {...}} once the network is up, then reads JSON
// commands, one per line, on stdin and answers each with one JSON line ({"ok": ...} or
// {"error": "..."}). It exits when stdin closes, so a test that dies takes the PDS with it.
import readline from 'node:readline'
import { TestNetworkNoAppView } from '@atproto/dev-env'
import { AtpAgent } from '@atproto/api'

const network = await TestNetworkNoAppView.create({})
const agents = new Map()

async function account({ handle, password }) {
  const agent = new AtpAgent({ service: network.pds.url })
  await agent.createAccount({ handle, password, email: `${handle}@example.test` })
  agents.set(agent.session.did, agent)
  const app = await agent.com.atproto.server.createAppPassword({ name: 'skystream-test' })
  return { did: agent.session.did, handle: agent.session.handle, appPassword: app.data.password }
}

function agentFor(did) {
  const agent = agents.get(did)
  if (!agent) throw new Error(`no account ${did} was created here`)
  return agent
}

const commands = {
  account,
  // A service-auth JWT minted by the PDS (signed with the account's key).
  async serviceAuth({ did, aud, lxm, exp }) {
    const res = await agentFor(did).com.atproto.server.getServiceAuth({ aud, lxm, exp })
    return { token: res.data.token }
  },
  async putRecord({ did, collection, rkey, record }) {
    const res = await agentFor(did).com.atproto.repo.putRecord({ repo: did, collection, rkey, record })
    return res.data
  },
  async createRecord({ did, collection, record }) {
    const res = await agentFor(did).com.atproto.repo.createRecord({ repo: did, collection, record })
    return res.data
  },
  async deleteRecord({ did, collection, rkey }) {
    await agentFor(did).com.atproto.repo.deleteRecord({ repo: did, collection, rkey })
    return {}
  },
  async getRecord({ did, collection, rkey }) {
    try {
      const res = await agentFor(did).com.atproto.repo.getRecord({ repo: did, collection, rkey })
      return res.data
    } catch (e) {
      if (e.error === 'RecordNotFound') return null
      throw e
    }
  },
}

const out = (v) => process.stdout.write(JSON.stringify(v) + '\n')
out({ ready: { pds: network.pds.url, plc: network.plc.url } })

const rl = readline.createInterface({ input: process.stdin })
for await (const line of rl) {
  if (!line.trim()) continue
  try {
    const { cmd, ...args } = JSON.parse(line)
    const fn = commands[cmd]
    if (!fn) throw new Error(`unknown command ${cmd}`)
    out({ ok: await fn(args) })
  } catch (e) {
    out({ error: String(e && e.message ? e.message : e) })
  }
}
await network.close()
process.exit(0)
