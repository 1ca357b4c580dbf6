// ESM entry: the implementation is CommonJS, so both loaders share one native instance.
// Node's ESM loader sees the names lib/index.js exports (its shorthand properties), so
// they are re-exported from there, not listed again here.
export * from './index.js'
export { default } from './index.js'
