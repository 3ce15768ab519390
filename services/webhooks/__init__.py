"""Webhooks: the dispatcher process that delivers events of the log to subscribed receivers
(signed as the Standard Webhooks specification says), and what it shares with the API."""
