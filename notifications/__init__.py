"""Notifications: everything from the outbox table to the recipient.

The sweep decides *what* is due and writes rows into the outbox (``enqueue``); dispatchers
(``dispatch``) deliver them through a channel (email, DingTalk, WeCom, Feishu, a folder) exactly
once in the ordinary case, retrying with backoff and parking dead letters for a human.
"""
