// The exchange both consumers run, given the package as their loader produced it: a hub
// and a spoke exchange 100 events each way, in order.
async function exchange({ Endpoint, connectSpoke, createHub }) {
  const local = { relayMode: 'disabled', bindAddr: '127.0.0.1:0', addressLookup: 'none' }
  const hubEndpoint = await Endpoint.create({ ...local, alpns: ['e2e/1'] })
  const hub = createHub(hubEndpoint, { alpn: 'e2e/1' })
  hub.addEventListener('spoke', (e) => {
    const { target } = e.detail
    target.addEventListener('up', (event) => target.dispatchEvent(new CustomEvent('down', { detail: event.detail })))
  })
  const spoke = connectSpoke(await Endpoint.create(local), hubEndpoint.ticket(), { alpn: 'e2e/1' })
  const back = []
  const done = new Promise((resolve) =>
    spoke.addEventListener('down', (e) => {
      back.push(e.detail)
      if (back.length === 100) resolve()
    }),
  )
  for (let i = 0; i < 100; i++) spoke.dispatchEvent(new CustomEvent('up', { detail: i }))
  await done
  if (back.some((v, i) => v !== i)) throw new Error('events out of order')
  await spoke.close()
  await hub.close()
  await hubEndpoint.close()
  console.log('exchanged 100 events each way')
}

module.exports = { exchange }
