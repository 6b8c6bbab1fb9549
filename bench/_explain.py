import asyncio, tempfile, time, sys, json
from pathlib import Path
import psycopg
from agentcore import embedded, migrations
from agentcore.postgres import _queries
from agentcore.rows import messages_to_json
from agentcore import Message
from bench.turns import Bench, QUICK
from bench.contenders import USER_CONTENT, ASSISTANT_CONTENT
s = embedded.start(Path(tempfile.mkdtemp())/"pgdata", throwaway=True)
migrations.apply(s.dsn)
async def main():
    async with Bench(s.dsn, QUICK, []) as b:
        await b.seed("x", 64, 1000)
        conn = b.admin
        q = _queries()
        msgs = messages_to_json([Message(role="user", content=USER_CONTENT), Message(role="assistant", content=ASSISTANT_CONTENT)])
        for name, sql, params in [
            ("lib append", q["append_messages"].text, {"agent_name": "x", "session_id": "3", "messages": msgs}),
            ("ref append", b.sql["reference_append"].text, {"agent_name": "x", "session_id": "4", "user_content": USER_CONTENT, "assistant_content": ASSISTANT_CONTENT}),
            ("lib load", q["load_last_messages"].text, {"agent_name": "x", "session_id": "3", "limit": 20}),
        ]:
            for i in range(3):
                cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS, TIMING off) " + sql, params)
            rows = await cur.fetchall()
            print("==", name); print("\n".join(r[0] for r in rows))
            # timing loop
            t = time.perf_counter()
            for i in range(300):
                await conn.execute(sql, params)
            print(name, "ms/exec", (time.perf_counter()-t)/300*1000)
asyncio.run(main())
s.stop()
