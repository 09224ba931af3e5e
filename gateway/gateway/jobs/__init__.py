"""Asynchronous jobs: a request accepted now, composed in the background, its result kept.

`model` (the API's types), `store` (where jobs and their files live: SQLite and a folder, behind
a protocol so another store can replace it), `runner` (runs queued jobs through the same
`Generator` as `/generate`, recovers unfinished ones after a restart, expires old results),
`webhook` (signed completion callbacks), `api` (the routes).
"""
