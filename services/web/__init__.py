"""The public pages people reach from a message: unsubscribe, confirmation and preferences."""
