"""Django's Redis cache, with one Redis client per connection pool instead of a new one for
every operation.

Django's `RedisCacheClient.get_client` builds a `redis.Redis` for each call; with redis-py 5
that costs more than the round trip itself (its response callbacks are set up each time), and
the failed-authentication throttle (core/throttle.py) reads the cache on every webhook
delivery. A `redis.Redis` is safe to share: it takes a connection from its pool per command.
"""

from __future__ import annotations

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class ReusedClientRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class ReusedClientRedisCache(RedisCache):
    """`django.core.cache.backends.redis.RedisCache`, reusing its clients (see above)."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient

    def add_and_incr(self, key: str, *, timeout: int) -> int:
        """`add(key, 0, timeout)` then `incr(key)` in one round trip, atomically (MULTI/EXEC:
        the key cannot expire between the two): the count after this increment."""
        key = self.make_and_validate_key(key)
        client = self._cache.get_client(key, write=True)
        with client.pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=timeout, nx=True)  # as `add` stores an int: its digits
            pipe.incr(key)
            return pipe.execute()[1]
