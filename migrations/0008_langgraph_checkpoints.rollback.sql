-- Back to 0006: LangGraph's checkpoint tables are dropped with every
-- checkpoint in them. The threads' conversations (their messages) stay.

DROP TABLE langgraph_checkpoint_writes;
DROP TABLE langgraph_checkpoint_blobs;
DROP TABLE langgraph_checkpoints;
