"""The legacy read path, as a benchmark harness (DESIGN.md §5) — not a product feature.

What Marrow replaces, built on real engines so that the headline benchmark can measure both on the
same data and layouts::

    CMS ─ ingestion ─ StreamWriter ──> NATS JetStream stream        (Kafka's role)       publish.py
                                          │
                      consumer process ───┘ records + precomputed row lists           consumer.py, rows.py
                                          v
                                   PostgreSQL key-value table        (Cassandra's role)   kv.py, keys.py
                                          │
                      page data service process: near-cache, each key on its own timer  service.py, cache.py
                                          │ HTTP, many keys a call
                                          v
                      LegacyPageBuilder: Marrow's layouts and assembly over keys         pages.py

:class:`~legacy.stack.LegacyStack` starts and stops the whole of it.
"""
