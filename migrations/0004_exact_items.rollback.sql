-- Back to messages without items. An item is not dropped: it moves into the
-- message's metadata under "item" (as jsonb, so its keys may come back in
-- another order), and a message that kept its text only in the item gets ''
-- as content, which the schema before 0002's rollback still reads.

UPDATE conversation_history
SET metadata = metadata || jsonb_build_object('item', item::jsonb),
    content = coalesce(content, CASE WHEN role = 'assistant' AND tool_calls IS NOT NULL THEN NULL ELSE '' END)
WHERE item IS NOT NULL;

ALTER TABLE conversation_history DROP COLUMN item;
