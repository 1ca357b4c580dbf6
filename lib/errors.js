'use strict'

// napi reports argument conversion failures with its own status names as `code`; users get
// one family of codes. The statuses are listed once, in Rust (src/error.rs).
const NAPI_ARGUMENT_CODES = new Set(require('./native.js').argumentErrorStatuses())

/** Creates an Error with a stable `code`. */
function irohError(code, message, extra) {
  const err = new Error(message)
  err.code = code
  if (extra) Object.assign(err, extra)
  return err
}

/** Gives every error that leaves this package an `ERR_IROH_*` code. */
function normalizeError(err) {
  if (!(err instanceof Error)) return irohError('ERR_IROH_INTERNAL', String(err))
  if (typeof err.code === 'string' && err.code.startsWith('ERR_IROH_')) return err
  err.code = NAPI_ARGUMENT_CODES.has(err.code) ? 'ERR_IROH_INVALID_ARGUMENT' : 'ERR_IROH_INTERNAL'
  return err
}

function invalidArgument(message) {
  return irohError('ERR_IROH_INVALID_ARGUMENT', message)
}

function requireString(value, name, code = 'ERR_IROH_INVALID_ARGUMENT') {
  if (typeof value !== 'string') {
    throw irohError(code, `${name} must be a string, got ${describe(value)}`)
  }
  return value
}

function requireBytes(value, name) {
  if (!(value instanceof Uint8Array)) {
    throw invalidArgument(`${name} must be a Buffer or Uint8Array, got ${describe(value)}`)
  }
  return value
}

/** A non-negative integer that fits the native u32 parameters. */
function requireU32(value, name) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw invalidArgument(`${name} must be an integer from 0 to 4294967295, got ${describe(value)}`)
  }
  return value
}

function optionalU32(value, name) {
  return value === undefined || value === null ? undefined : requireU32(value, name)
}

function describe(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'string') return `a string of length ${value.length}`
  return typeof value
}

module.exports = { irohError, normalizeError, invalidArgument, requireString, requireBytes, requireU32, optionalU32 }
