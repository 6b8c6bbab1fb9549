-- Back to 0003: conversation_sessions' pages fill completely again.

ALTER TABLE conversation_sessions RESET (fillfactor);
