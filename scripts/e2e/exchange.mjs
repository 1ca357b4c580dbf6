// ESM consumer of the installed package: loads it with `import`.
import * as iroh from '@alkdev/iroh'
import { exchange } from './exchange-events.cjs'

await exchange(iroh)
