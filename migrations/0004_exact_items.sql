-- Exact items: a message may carry a framework's own record of it (an OpenAI
-- Agents SDK session item, a serialized LangChain message), kept verbatim.
-- json, not jsonb: json keeps the text as written, so the item reads back with
-- its keys in order and its floats as floats (jsonb would reorder the keys and
-- turn 1e+16 into an int). Adding a nullable column without a default
-- rewrites nothing: instant on a table of any size.
-- depends: 0003_session_metadata

ALTER TABLE conversation_history ADD COLUMN item json;
