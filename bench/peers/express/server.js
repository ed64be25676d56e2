// The Express peer of bench/run.sh and bench/compare.sh: one INCR per visit and a page of about
// 100 bytes, like bench/FloorApp.java, with Express's and node-redis's defaults everywhere else.
// HOST, PORT, REPLICA_NAME and REDIS_URL come from the environment, as scripts/local-stack.sh
// sets them for a replica.
const express = require('express');
const { createClient } = require('redis');

const env = process.env;
const name = env.REPLICA_NAME || 'peer';
const redis = createClient({ url: env.REDIS_URL || 'redis://127.0.0.1:6379' });
redis.on('error', (err) => console.error('redis:', err.message));

const app = express();
app.get('/', async (req, res) => {
  const visits = await redis.incr('peer:total');
  res.type('html').send(`<!doctype html><title>peer</title><p>Visit ${visits}, served by ${name}.</p>\n`);
});
app.get('/healthz', (req, res) => res.send('ok'));
app.get('/readyz', async (req, res) => res.send(await redis.ping()));

redis.connect().then(() => {
  const server = app.listen(Number(env.PORT || 8080), env.HOST || '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => redis.quit()));
});
