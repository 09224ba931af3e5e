"""The continuous-batching engine: MusicGen stepped one token column at a time over slots.

Requests join a running batch at any step and leave it the step they finish or are cancelled,
so nobody waits behind a whole clip (iteration-level scheduling, as LLM servers do). The pieces:

- `musicgen`: the transformers MusicGen decoder driven step by step with per-row positions;
- `slots`: the fixed KV-cache buffers the rows live in;
- `rows`: one request's windows, delay pattern, sampler and stream decoder;
- `core`: admission, one step over the active rows, retirement (synchronous, no threads);
- `runner`: the model thread and the asyncio side (tickets, queue limit, metrics).
"""
