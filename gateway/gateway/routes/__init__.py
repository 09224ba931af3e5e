"""The gateway's HTTP layer: FastAPI routers and what they need of a request (forms, the
lifespan's objects, the OpenAPI document). It sits above the domain (`generate`, `request`,
`jobs`, `upstream` …), which never imports it (`.importlinter`)."""
