"""Instagram connector (business accounts, Graph API): comments, mentions and direct messages in through signed webhooks; replies out."""
