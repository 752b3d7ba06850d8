"""The supervisor console: a page at /console with live calls, queues, agents, parking lots and due callbacks.

`ivr.console.feed` turns the call registry into a snapshot and batched deltas; `ivr.console.web` serves the page
(package data in `static/`) and the Server-Sent Events stream `/events`; `ivr.console.views` shapes the rows.
"""
