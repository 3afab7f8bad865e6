-- A ClientRequestToken is bound per operation across collections (the same token with another
-- CollectionId is IdempotentParameterMismatchException), so a batch looks tokens up by token alone.
-- Not unique: logs written before this rule may hold one token in two collections; the command
-- processor checks the rule under the append lock.
CREATE INDEX command_tokens_by_token ON command_tokens (client_token, operation);
