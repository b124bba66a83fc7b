// Starts the S3-compatible test server (@20minutes/s3rver) through its JS API, on loopback.
// Usage: node s3_server.js PORT DIRECTORY BUCKET[,BUCKET...]
// Prints "s3rver ready 127.0.0.1:PORT" once it listens; stops cleanly on SIGTERM or SIGINT.
'use strict'

// Debian 12's own nodejs is 18; s3rver's router (@koa/router 15) calls Array#toReversed, which
// arrived in Node 20. Define it when missing so the server runs on either.
if (!Array.prototype.toReversed) {
  Object.defineProperty(Array.prototype, 'toReversed', {
    value: function toReversed() { return Array.prototype.slice.call(this).reverse() },
    writable: true,
    configurable: true,
  })
}

const S3rver = require('@20minutes/s3rver')

const [port, directory, buckets] = process.argv.slice(2)
if (!port || !directory || !buckets) {
  console.error('usage: node s3_server.js PORT DIRECTORY BUCKET[,BUCKET...]')
  process.exit(2)
}

const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port),
  directory,
  silent: false,
  vhostBuckets: false,
  configureBuckets: buckets.split(',').map((name) => ({ name, configs: [] })),
})

server.run().then(
  (address) => console.log(`s3rver ready ${address.address}:${address.port}`),
  (error) => {
    console.error(`s3rver failed to start: ${error.stack || error}`)
    process.exit(1)
  }
)

const stop = () => server.close().finally(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
