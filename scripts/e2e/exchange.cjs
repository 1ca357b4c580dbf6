// CommonJS consumer of the installed package: loads it with `require`.
const { exchange } = require('./exchange-events.cjs')

exchange(require('@alkdev/iroh')).catch((err) => {
  console.error(err)
  process.exit(1)
})
