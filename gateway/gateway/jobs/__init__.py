"""Asynchronous jobs: a request accepted now, composed in the background, its result kept.

`model` (the API's types), `store` (the protocol and its SQL: jobs in a table that is also the
queue, claimed under leases; files in a folder per job), `sqlite_store` / `postgres_store`
(one gateway / many replicas), `stores` (the one the settings name), `runner` (claims jobs and
runs them through the same `Generator` as `/generate`, renews leases, expires old results),
`webhook` (signed completion callbacks), `api` (the routes).
"""
