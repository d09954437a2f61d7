"""The admin web pages, MTA-STS policy serving and the TLS report POST endpoint.

`app.WebApp` maps an HttpRequest to an HttpResponse; the HttpSessionActor
(actors/web.py) feeds it requests from the connection. Pages are server-rendered
jinja2 templates with autoescaping, and work without JavaScript.
"""
