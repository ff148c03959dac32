"""LINE Messaging API connector: signed webhooks in, reply (free) or push (billed) out."""
