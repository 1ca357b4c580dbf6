// The same package through require() (CommonJS resolution of the exports map).
import iroh = require('@alkdev/iroh')

export function key(): string {
  return iroh.nodeIdFromSecretKey(iroh.generateSecretKey())
}
