'use strict'

// The napi-rs generated loader picks the .node file for this platform.
module.exports = require('../binding.js')
