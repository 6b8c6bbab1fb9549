import asyncio, tempfile, time, cProfile, pstats, sys
from pathlib import Path
from agentcore import embedded, migrations
from bench.turns import Bench, QUICK
s = embedded.start(Path(tempfile.mkdtemp())/"pgdata", throwaway=True)
migrations.apply(s.dsn)
key = sys.argv[1]
async def main():
    async with Bench(s.dsn, QUICK, [key]) as b:
        await b.run(key, 16, 1000, 0, 50)
        pr = cProfile.Profile(); pr.enable()
        r = await b.run(key, 16, 1000, 9, 150)
        pr.disable()
        st = pstats.Stats(pr); st.sort_stats("cumtime").print_stats(r"agentcore|psycopg_pool|contenders|pydantic|json", 40)
asyncio.run(main())
s.stop()
