"""The review page (README, "The review page"): served by the daemon on `ui.listen`, read from the journal.

`server` answers HTTP (the standard library's ThreadingHTTPServer), routes each request, streams the overview as
server-sent events and runs the actions; `views` answers the pages, images and static files from the journal and
the config alone; `security` decides who may ask and what a request may change; `pages` turns journal records into
what the templates show (Jinja2, escaped by default); `images` finds a result or an input by its journal id, never
by a path from the URL, and keeps thumbnails in the state folder. The page only reads the journal; its one action,
Retry, is the daemon's own `remixd retry`.
"""
